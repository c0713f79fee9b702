/**
 * Reads iptables-save output back into tables, chains and rule specs (pure): the one reader
 * of that format, for the iptables backend (what the kernel holds, to compare and restore)
 * and for the tracer (trace/iptables-dump.ts parses each spec further, into the IR).
 */
import type { TableName } from './ir.js';

export interface SavedTable {
  readonly name: string;
  /** Every chain in the table (built-in and user), in save order. */
  readonly chains: string[];
  /** Rules in save order; `spec` is everything after `-A CHAIN `. */
  readonly rules: Array<{ chain: string; spec: string }>;
  /** The table's full block as printed (with counters if saved with -c), for rollback. */
  readonly block: string;
}

export type SavedState = Map<string, SavedTable>;

export function parseIptablesSave(text: string): SavedState {
  const tables: SavedState = new Map();
  let current: { name: string; chains: string[]; rules: Array<{ chain: string; spec: string }>; lines: string[] } | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || line === '') continue;
    if (line.startsWith('*')) {
      current = { name: line.slice(1).trim(), chains: [], rules: [], lines: [line] };
      continue;
    }
    if (!current) continue;
    current.lines.push(line);
    if (line === 'COMMIT') {
      tables.set(current.name, {
        name: current.name,
        chains: current.chains,
        rules: current.rules,
        block: current.lines.join('\n') + '\n',
      });
      current = undefined;
      continue;
    }
    if (line.startsWith(':')) {
      current.chains.push(line.slice(1).split(' ')[0]!);
      continue;
    }
    // With -c each rule starts with its counters: "[pkts:bytes] -A CHAIN …".
    const m = /^(?:\[\d+:\d+\] )?-A (\S+)(?: (.*))?$/.exec(line);
    if (m) current.rules.push({ chain: m[1]!, spec: m[2] ?? '' });
  }
  return tables;
}

export function isTableName(name: string): name is TableName {
  return name === 'raw' || name === 'mangle' || name === 'nat' || name === 'filter';
}
