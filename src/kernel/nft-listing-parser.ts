/**
 * Reads `nft -y list table inet NAME` output back into tables, sets and chains, so what the
 * kernel holds compares with what the nftables renderer wants (which writes rules in this very
 * form). Pure. Counters are reduced to a bare `counter`: they change with traffic, not config.
 */

export interface ListedSet {
  readonly name: string;
  /** Property lines other than elements, e.g. `type ipv4_addr`, `flags interval`. */
  readonly properties: string[];
  readonly elements: string[];
}

export interface ListedChain {
  readonly name: string;
  /** `type … hook … priority …; policy …;` for a base chain. */
  header?: string;
  readonly rules: string[];
}

export interface ListedTable {
  readonly family: string;
  readonly name: string;
  readonly sets: ListedSet[];
  readonly chains: ListedChain[];
  /** Anything else found in the table (maps, flowtables, comments…), as raw lines. */
  readonly other: string[];
}

/** `counter packets 12 bytes 720` → `counter`. */
export function normalizeRuleLine(line: string): string {
  return line.replace(/counter packets \d+ bytes \d+/g, 'counter').trim();
}

/** Parses every `table FAMILY NAME { … }` block in the text. */
export function parseNftListing(text: string): ListedTable[] {
  const tables: ListedTable[] = [];
  const lines = text.split('\n');
  let table: ListedTable | undefined;
  let chain: ListedChain | undefined;
  let set: ListedSet | undefined;
  let otherDepth = 0;
  let elements: string | undefined;

  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (elements !== undefined) {
      elements += ' ' + line;
      if (line.endsWith('}')) {
        set!.elements.push(...splitElements(elements));
        elements = undefined;
      }
      continue;
    }
    if (!table) {
      const m = /^table (\S+) (\S+) \{$/.exec(line);
      if (m) table = { family: m[1]!, name: m[2]!, sets: [], chains: [], other: [] };
      continue;
    }
    if (otherDepth > 0) {
      table.other.push(line);
      if (line.endsWith('{')) otherDepth++;
      if (line === '}') otherDepth--;
      continue;
    }
    if (set) {
      if (line === '}') {
        set = undefined;
      } else if (line.startsWith('elements = {')) {
        if (line.endsWith('}')) set.elements.push(...splitElements(line));
        else elements = line;
      } else {
        set.properties.push(line);
      }
      continue;
    }
    if (chain) {
      if (line === '}') chain = undefined;
      else if (chain.rules.length === 0 && chain.header === undefined && /^type \S+ hook /.test(line)) chain.header = line;
      else chain.rules.push(normalizeRuleLine(line));
      continue;
    }
    if (line === '}') {
      tables.push(table);
      table = undefined;
      continue;
    }
    const c = /^chain (\S+) \{$/.exec(line);
    if (c) {
      chain = { name: c[1]!, rules: [] };
      table.chains.push(chain);
      continue;
    }
    const s = /^set (\S+) \{$/.exec(line);
    if (s) {
      set = { name: s[1]!, properties: [], elements: [] };
      table.sets.push(set);
      continue;
    }
    table.other.push(line);
    if (line.endsWith('{')) otherDepth = 1;
  }
  return tables;
}

function splitElements(text: string): string[] {
  const inner = text.slice(text.indexOf('{') + 1, text.lastIndexOf('}'));
  return inner
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
}
