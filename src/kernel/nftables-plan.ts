/**
 * Compares the inet tables the kernel holds (parsed `nft -y list table`) with the tables a
 * configuration wants (rendered), as human-readable differences. Pure.
 *
 * What interpose owns under nftables: the whole of each table named in OWNED_NFT_TABLES —
 * every chain, rule and set in it. Nothing outside those tables is read for drift or changed.
 */
import { baseChainHeader, type NftTable } from '../rules/render/nftables.js';
import type { ListedTable } from './nft-listing-parser.js';

/** Differences between what is there and what is wanted; empty when identical. */
export function diffNftTables(current: readonly ListedTable[], desired: readonly NftTable[]): string[] {
  const diffs: string[] = [];
  const names = new Set([...current.map((t) => t.name), ...desired.map((t) => t.name)]);
  for (const name of names) {
    const have = current.find((t) => t.name === name);
    const want = desired.find((t) => t.name === name);
    if (!have) {
      diffs.push(`inet ${name}: missing table`);
      continue;
    }
    if (!want) {
      const rules = have.chains.reduce((n, c) => n + c.rules.length, 0);
      diffs.push(`inet ${name}: extra table (${have.chains.length} chains, ${rules} rules)`);
      continue;
    }
    diffs.push(...diffTable(have, want));
  }
  return diffs;
}

function diffTable(have: ListedTable, want: NftTable): string[] {
  const where = `inet ${want.name}`;
  const diffs: string[] = [];
  for (const line of have.other) diffs.push(`${where}: unexpected ${line}`);

  const chainNames = new Set([...have.chains.map((c) => c.name), ...want.chains.map((c) => c.name)]);
  for (const chain of chainNames) {
    const a = have.chains.find((c) => c.name === chain);
    const b = want.chains.find((c) => c.name === chain);
    if (!a) diffs.push(`${where}: missing chain ${chain}`);
    else if (!b) diffs.push(`${where}: extra chain ${chain} (${a.rules.length} rules)`);
    else {
      const wantHeader = b.base ? baseChainHeader(b.base) : undefined;
      if (a.header !== wantHeader) diffs.push(`${where} ${chain}: hook is "${a.header ?? 'none'}", want "${wantHeader ?? 'none'}"`);
      diffs.push(...diffRules(`${where} ${chain}`, a.rules, b.rules));
    }
  }

  const setNames = new Set([...have.sets.map((s) => s.name), ...want.sets.map((s) => s.name)]);
  for (const name of setNames) {
    const a = have.sets.find((s) => s.name === name);
    const b = want.sets.find((s) => s.name === name);
    if (!a) diffs.push(`${where}: missing set ${name} (${b!.elements.length} elements)`);
    else if (!b) diffs.push(`${where}: extra set ${name} (${a.elements.length} elements)`);
    else {
      const wantProps = [`type ${b.family === 4 ? 'ipv4_addr' : 'ipv6_addr'}`, 'flags interval'];
      if (a.properties.join('; ') !== wantProps.join('; ')) {
        diffs.push(`${where} set ${name}: "${a.properties.join('; ')}", want "${wantProps.join('; ')}"`);
      }
      diffs.push(...diffElements(`${where} set ${name}`, a.elements, b.elements));
    }
  }
  return diffs;
}

function diffRules(where: string, have: readonly string[], want: readonly string[]): string[] {
  if (have.length === want.length && have.every((s, i) => s === want[i])) return [];
  const out: string[] = [];
  const haveSet = new Set(have);
  const wantSet = new Set(want);
  for (const s of want) if (!haveSet.has(s)) out.push(`${where}: missing  ${s}`);
  for (const s of have) if (!wantSet.has(s)) out.push(`${where}: extra    ${s}`);
  if (out.length === 0) out.push(`${where}: same rules in a different order (or repeated)`);
  return out;
}

function diffElements(where: string, have: readonly string[], want: readonly string[]): string[] {
  const haveSet = new Set(have);
  const wantSet = new Set(want);
  const missing = want.filter((e) => !haveSet.has(e));
  const extra = have.filter((e) => !wantSet.has(e));
  const out: string[] = [];
  const sample = (xs: string[]) => xs.slice(0, 5).join(', ') + (xs.length > 5 ? `, … (${xs.length} in all)` : '');
  if (missing.length > 0) out.push(`${where}: missing elements ${sample(missing)}`);
  if (extra.length > 0) out.push(`${where}: extra elements ${sample(extra)}`);
  return out;
}
