/** Small constructors that keep the rule builders readable. */
import { parseCidr, type Cidr } from '../net/cidr.js';
import type { L4Protocol, Match, Rule, Target } from './ir.js';

export const rule = (target: Target, ...matches: Match[]): Rule => ({ matches, target });

export const jump = (chain: string): Target => ({ kind: 'jump', chain });
export const RETURN: Target = { kind: 'return' };

export const proto = (protocol: L4Protocol): Match => ({ kind: 'protocol', protocol });
export const dport = (port: number, negate = false): Match => ({ kind: 'destinationPort', port, negate });
export const sport = (port: number): Match => ({ kind: 'sourcePort', port });
export const dst = (cidr: Cidr, negate = false): Match => ({ kind: 'destination', cidr, negate });
export const src = (cidr: Cidr): Match => ({ kind: 'source', cidr });
export const inIf = (name: string): Match => ({ kind: 'inInterface', name });
export const outIf = (name: string): Match => ({ kind: 'outInterface', name });
export const uidOwner = (uid: number, negate = false): Match => ({ kind: 'ownerUid', uid, negate });
export const gidOwner = (gid: number, negate = false): Match => ({ kind: 'ownerGid', gid, negate });
export const markIs = (value: number, negate = false): Match => ({ kind: 'mark', value, negate });

/** A constant CIDR; throws only on a programming error (the text is a literal). */
export function cidr(text: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw new Error(`bad literal CIDR ${text}`);
  return c;
}
