/**
 * One verify/drift difference as an object (`interpose verify --json`). The backends word
 * their differences for people (iptables-plan.ts diffOwned, nftables-plan.ts, verify-kernel's
 * leftovers); this reads those words back into the stable schema scripts consume:
 * {kind, family, table, chain, rule, text}, `text` being the line `verify` prints.
 */

export interface DifferenceObject {
  /** missing: the configuration has it, the kernel not; extra: the other way; changed: both, differently. */
  readonly kind: 'missing' | 'extra' | 'changed';
  /** 4 or 6 for an iptables family; null for nftables inet tables and whole-backend leftovers. */
  readonly family: 4 | 6 | null;
  readonly table: string | null;
  readonly chain: string | null;
  /** The rule as the backend writes it (`-A ISTIO_OUTPUT -d … -j RETURN`, an nft rule), or null. */
  readonly rule: string | null;
  readonly text: string;
}

const IPTABLES = /^IPv([46]) (\S+)(?: (\S+))?: (.*)$/s;
const NFT = /^inet (\S+)(?: (?!set )(\S+))?(?: set (\S+))?: (.*)$/s;

export function differenceObject(text: string): DifferenceObject {
  const ipt = IPTABLES.exec(text);
  if (ipt) return fromDetail(text, Number(ipt[1]) as 4 | 6, ipt[2]!, ipt[3] ?? null, ipt[4]!);
  const nft = NFT.exec(text);
  if (nft) return fromDetail(text, null, nft[1]!, nft[2] ?? (nft[3] !== undefined ? `set ${nft[3]}` : null), nft[4]!);
  // Leftovers of the other backend: "nftables: table inet NAME exists, …", "iptables-nft holds ISTIO_* rules, …".
  const table = /^nftables: table inet (\S+) exists/.exec(text)?.[1] ?? null;
  return { kind: 'extra', family: null, table, chain: null, rule: null, text };
}

function fromDetail(text: string, family: 4 | 6 | null, table: string, chain: string | null, detail: string): DifferenceObject {
  const base = { family, table, text };
  let m = /^(missing|extra) chain (\S+)/.exec(detail);
  if (m) return { ...base, kind: m[1] as 'missing' | 'extra', chain: m[2]!, rule: null };
  m = /^(missing|extra) +(-A .*|[^ ].*)$/s.exec(detail);
  if (m && !/^(table|set|elements)\b/.test(m[2]!)) return { ...base, kind: m[1] as 'missing' | 'extra', chain, rule: m[2]! };
  m = /^(missing|extra) /.exec(detail);
  if (m) return { ...base, kind: m[1] as 'missing' | 'extra', chain, rule: null };
  if (/^unexpected /.test(detail)) return { ...base, kind: 'extra', chain, rule: detail.slice('unexpected '.length) };
  return { ...base, kind: 'changed', chain, rule: null };
}
