/**
 * Compiles one rendered rule (its IR source) to nf_tables expressions, the byte code the nft
 * tool would send for the rule's text: the same expressions in the same order, with the
 * dependencies nft inserts (`meta nfproto` before the first address match of a family, `meta
 * l4proto` before the first port match) where nft inserts them. `nft list` decompiles what
 * this writes back to the rule's text: a kernel test applies every rendered rule both ways and
 * compares the listings, and the conformance run holds the result to istio's golden tables.
 *
 * Only the statement forms the renderer writes are known here; anything else is a bug caught
 * by the exhaustive switches.
 */
import type { IpFamily } from '../../../net/cidr.js';
import type { L4Protocol, Match, Rule, Target } from '../../ir.js';
import { isPortMatch, nftChainName, nftInterfaceName, nftMatchOrder, ruleFamily, type NftRuleSource } from '../nftables.js';
import {
  CT_STATE_BITS,
  IPPROTO,
  NF_NAT_RANGE_PROTO_SPECIFIED,
  NFPROTO,
  NFT_CMP,
  NFT_CT,
  NFT_LOOKUP_F_INV,
  NFT_META,
  NFT_PAYLOAD_BASE,
  NFT_REG_1,
  NFT_REG_VERDICT,
  NFTA_BITWISE,
  NFTA_CMP,
  NFTA_CT,
  NFTA_DATA,
  NFTA_EXPR,
  NFTA_IMMEDIATE,
  NFTA_LIST_ELEM,
  NFTA_LOOKUP,
  NFTA_META,
  NFTA_PAYLOAD,
  NFTA_REDIR,
  NFTA_TPROXY,
  NFTA_VERDICT,
  VERDICT,
} from './nf-tables-abi.js';
import { NetlinkWriter } from './netlink-writer.js';
import { assertNever } from '../../assert-never.js';

/** A port list that becomes an anonymous set (`tcp dport { 80, 443 }`). */
export interface PortSet {
  readonly match: Extract<Match, { kind: 'destinationPorts' }>;
  readonly protocol: L4Protocol;
  /** Sorted, distinct; more than one. */
  readonly ports: readonly number[];
}

/** The ids the batch gave the sets a rule looks up. */
export interface SetIds {
  named(name: string): number;
  anonymous(match: Match): number;
}

/** The name the nft tool gives every anonymous set; the kernel numbers it (`__set0` …). */
export const ANONYMOUS_SET_NAME = '__set%d';

const uniquePorts = (ports: readonly number[]) => [...new Set(ports)].sort((a, b) => a - b);

function protocolOf(rule: Rule): L4Protocol {
  for (const m of rule.matches) if (m.kind === 'protocol') return m.protocol;
  throw new Error('a port match needs a protocol match in the same rule');
}

/** The anonymous port sets a rule needs; the batch writes them before the rule. */
export function portSetsOf(rule: Rule): PortSet[] {
  const out: PortSet[] = [];
  for (const m of rule.matches) {
    if (m.kind !== 'destinationPorts') continue;
    const ports = uniquePorts(m.ports);
    if (ports.length > 1) out.push({ match: m, protocol: protocolOf(rule), ports });
  }
  return out;
}

const be16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};
const byte = (n: number) => Uint8Array.of(n);
const nfproto = (family: IpFamily) => (family === 4 ? NFPROTO.IPV4 : NFPROTO.IPV6);
const IFNAMSIZ = 16;

/** Writes NFTA_RULE_EXPRESSIONS' list elements for one rule. */
export function writeRuleExpressions(w: NetlinkWriter, source: NftRuleSource, ids: SetIds): void {
  new RuleCompiler(w, ids).compile(source);
}

class RuleCompiler {
  /** The family and protocol already tested by this rule (nft adds each dependency once). */
  private family: IpFamily | undefined;
  private protocol: L4Protocol | undefined;

  constructor(
    private readonly w: NetlinkWriter,
    private readonly ids: SetIds,
  ) {}

  compile(source: NftRuleSource): void {
    const { rule } = source;
    const own = ruleFamily(rule);
    if (source.family !== undefined && own === undefined) this.requireFamily(source.family);
    for (const m of nftMatchOrder(rule.matches)) this.match(m, rule, source);
    this.target(rule.target, own ?? source.family);
  }

  // ---- expressions ----

  private expr(name: string, body: () => void): void {
    const w = this.w;
    const elem = w.beginNest(NFTA_LIST_ELEM);
    w.string(NFTA_EXPR.NAME, name);
    const data = w.beginNest(NFTA_EXPR.DATA);
    body();
    w.endNest(data);
    w.endNest(elem);
  }

  private data(type: number, value: Uint8Array): void {
    const nest = this.w.beginNest(type);
    this.w.bytesAttr(NFTA_DATA.VALUE, value);
    this.w.endNest(nest);
  }

  /**
   * `meta KEY` / `ct KEY` read into register 1 (`load`), or set from it (`set`): the two
   * expressions differ only in their attribute numbers. Attributes in the order nft writes them.
   */
  private keyExpr(name: 'meta' | 'ct', op: 'load' | 'set', key: number): void {
    const attr = name === 'meta' ? NFTA_META : NFTA_CT;
    this.expr(name, () => {
      if (op === 'load') this.w.u32be(attr.DREG, NFT_REG_1);
      this.w.u32be(attr.KEY, key);
      if (op === 'set') this.w.u32be(attr.SREG, NFT_REG_1);
    });
  }

  private metaLoad(key: number): void {
    this.keyExpr('meta', 'load', key);
  }

  private metaSet(key: number): void {
    this.keyExpr('meta', 'set', key);
  }

  private ctLoad(key: number): void {
    this.keyExpr('ct', 'load', key);
  }

  private ctSet(key: number): void {
    this.keyExpr('ct', 'set', key);
  }

  private cmp(negate: boolean | undefined, value: Uint8Array): void {
    this.expr('cmp', () => {
      this.w.u32be(NFTA_CMP.SREG, NFT_REG_1);
      this.w.u32be(NFTA_CMP.OP, negate ? NFT_CMP.NEQ : NFT_CMP.EQ);
      this.data(NFTA_CMP.DATA, value);
    });
  }

  private payload(base: number, offset: number, length: number): void {
    this.expr('payload', () => {
      this.w.u32be(NFTA_PAYLOAD.DREG, NFT_REG_1);
      this.w.u32be(NFTA_PAYLOAD.BASE, base);
      this.w.u32be(NFTA_PAYLOAD.OFFSET, offset);
      this.w.u32be(NFTA_PAYLOAD.LEN, length);
    });
  }

  private bitwise(mask: Uint8Array): void {
    this.expr('bitwise', () => {
      this.w.u32be(NFTA_BITWISE.SREG, NFT_REG_1);
      this.w.u32be(NFTA_BITWISE.DREG, NFT_REG_1);
      this.w.u32be(NFTA_BITWISE.LEN, mask.length);
      this.data(NFTA_BITWISE.MASK, mask);
      this.data(NFTA_BITWISE.XOR, new Uint8Array(mask.length));
    });
  }

  private lookup(name: string, id: number, negate: boolean | undefined): void {
    this.expr('lookup', () => {
      this.w.string(NFTA_LOOKUP.SET, name);
      this.w.u32be(NFTA_LOOKUP.SREG, NFT_REG_1);
      this.w.u32be(NFTA_LOOKUP.SET_ID, id);
      if (negate) this.w.u32be(NFTA_LOOKUP.FLAGS, NFT_LOOKUP_F_INV);
    });
  }

  private immediate(value: Uint8Array): void {
    this.expr('immediate', () => {
      this.w.u32be(NFTA_IMMEDIATE.DREG, NFT_REG_1);
      this.data(NFTA_IMMEDIATE.DATA, value);
    });
  }

  private verdict(code: number, chain?: string): void {
    this.expr('immediate', () => {
      const w = this.w;
      w.u32be(NFTA_IMMEDIATE.DREG, NFT_REG_VERDICT);
      const data = w.beginNest(NFTA_IMMEDIATE.DATA);
      const verdict = w.beginNest(NFTA_DATA.VERDICT);
      w.i32be(NFTA_VERDICT.CODE, code);
      if (chain !== undefined) w.string(NFTA_VERDICT.CHAIN, chain);
      w.endNest(verdict);
      w.endNest(data);
    });
  }

  private counter(): void {
    this.expr('counter', () => undefined);
  }

  // ---- dependencies ----

  private requireFamily(family: IpFamily): void {
    if (this.family === family) return;
    this.metaLoad(NFT_META.NFPROTO);
    this.cmp(false, byte(nfproto(family)));
    this.family = family;
  }

  private requireProtocol(protocol: L4Protocol): void {
    if (this.protocol === protocol) return;
    this.metaLoad(NFT_META.L4PROTO);
    this.cmp(false, byte(IPPROTO[protocol]));
    this.protocol = protocol;
  }

  // ---- matches ----

  private match(m: Match, rule: Rule, source: NftRuleSource): void {
    switch (m.kind) {
      case 'source':
      case 'destination':
        return this.address(m, source.set?.match === m ? source.set.name : undefined);
      case 'inInterface':
      case 'outInterface': {
        this.metaLoad(m.kind === 'inInterface' ? NFT_META.IIFNAME : NFT_META.OIFNAME);
        const name = nftInterfaceName(m.name);
        // Validated upstream (1-15 characters); a longer one would be cut, and match other names.
        if (Buffer.byteLength(name) >= IFNAMSIZ) throw new Error(`interface name "${m.name}" is longer than 15 bytes`);
        // `eth*` compares the prefix only; a full name compares all IFNAMSIZ bytes, NUL-padded.
        const bytes = name.endsWith('*') ? Buffer.from(name.slice(0, -1)) : Buffer.concat([Buffer.from(name)], IFNAMSIZ);
        return this.cmp(m.negate, bytes);
      }
      case 'protocol':
        // With a port match the protocol is the port's dependency (written there); alone it is
        // `meta l4proto`.
        if (rule.matches.some(isPortMatch)) return;
        return this.requireProtocol(m.protocol);
      case 'destinationPort':
      case 'sourcePort':
        this.requireProtocol(protocolOf(rule));
        this.payload(NFT_PAYLOAD_BASE.TRANSPORT, m.kind === 'sourcePort' ? 0 : 2, 2);
        return this.cmp(m.negate, be16(m.port));
      case 'destinationPorts': {
        this.requireProtocol(protocolOf(rule));
        this.payload(NFT_PAYLOAD_BASE.TRANSPORT, 2, 2);
        const ports = uniquePorts(m.ports);
        if (ports.length === 1) return this.cmp(m.negate, be16(ports[0]!));
        return this.lookup(ANONYMOUS_SET_NAME, this.ids.anonymous(m), m.negate);
      }
      case 'ownerUid':
        this.metaLoad(NFT_META.SKUID);
        return this.cmp(m.negate, NetlinkWriter.hostU32(m.uid));
      case 'ownerGid':
        this.metaLoad(NFT_META.SKGID);
        return this.cmp(m.negate, NetlinkWriter.hostU32(m.gid));
      case 'conntrackState': {
        let bits = 0;
        for (const s of m.states) bits |= CT_STATE_BITS[s];
        this.ctLoad(NFT_CT.STATE);
        this.bitwise(NetlinkWriter.hostU32(bits));
        return this.cmp(true, NetlinkWriter.hostU32(0));
      }
      case 'mark':
        this.metaLoad(NFT_META.MARK);
        return this.cmp(m.negate, NetlinkWriter.hostU32(m.value));
      case 'connmark':
        this.ctLoad(NFT_CT.MARK);
        return this.cmp(false, NetlinkWriter.hostU32(m.value));
      default:
        return assertNever(m);
    }
  }

  /**
   * `ip daddr 192.0.2.0/24` as nft compiles it: a byte-aligned prefix loads and compares only
   * its bytes; any other prefix loads the whole address and masks it first.
   */
  private address(m: Extract<Match, { kind: 'source' | 'destination' }>, setName: string | undefined): void {
    const { family, prefixLength } = m.cidr;
    this.requireFamily(family);
    const size = family === 4 ? 4 : 16;
    const offset = family === 4 ? (m.kind === 'source' ? 12 : 16) : m.kind === 'source' ? 8 : 24;
    if (setName !== undefined) {
      this.payload(NFT_PAYLOAD_BASE.NETWORK, offset, size);
      return this.lookup(setName, this.ids.named(setName), m.negate);
    }
    const address = Uint8Array.from(m.cidr.address.toByteArray());
    if (prefixLength === size * 8) {
      this.payload(NFT_PAYLOAD_BASE.NETWORK, offset, size);
      return this.cmp(m.negate, address);
    }
    if (prefixLength > 0 && prefixLength % 8 === 0) {
      this.payload(NFT_PAYLOAD_BASE.NETWORK, offset, prefixLength / 8);
      return this.cmp(m.negate, address.subarray(0, prefixLength / 8));
    }
    const mask = new Uint8Array(size);
    for (let bit = 0; bit < prefixLength; bit++) mask[bit >> 3]! |= 0x80 >> (bit & 7);
    this.payload(NFT_PAYLOAD_BASE.NETWORK, offset, size);
    this.bitwise(mask);
    return this.cmp(m.negate, address.map((b, i) => b & mask[i]!));
  }

  // ---- targets ----

  private target(t: Target, family: IpFamily | undefined): void {
    switch (t.kind) {
      case 'jump':
        this.counter();
        return this.verdict(VERDICT.jump, nftChainName(t.chain));
      case 'return':
      case 'accept':
      case 'drop':
        this.counter();
        return this.verdict(VERDICT[t.kind]);
      case 'redirect':
        this.counter();
        this.immediate(be16(t.toPort));
        return this.expr('redir', () => {
          this.w.u32be(NFTA_REDIR.REG_PROTO_MIN, NFT_REG_1);
          this.w.u32be(NFTA_REDIR.FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
        });
      case 'tproxy': {
        if (t.mask !== 0xffffffff) throw new Error(`tproxy mark mask ${t.mask}: only a full mask is rendered for nftables`);
        if (family === undefined) throw new Error('a tproxy rule needs an address family (an ip/ip6 match)');
        this.immediate(be16(t.onPort));
        this.expr('tproxy', () => {
          this.w.u32be(NFTA_TPROXY.FAMILY, nfproto(family));
          this.w.u32be(NFTA_TPROXY.REG_PORT, NFT_REG_1);
        });
        this.immediate(NetlinkWriter.hostU32(t.mark));
        this.metaSet(NFT_META.MARK);
        this.counter();
        return this.verdict(VERDICT.accept);
      }
      case 'setMark':
        this.counter();
        this.immediate(NetlinkWriter.hostU32(t.mark));
        return this.metaSet(NFT_META.MARK);
      case 'connmarkSave':
        this.counter();
        this.metaLoad(NFT_META.MARK);
        return this.ctSet(NFT_CT.MARK);
      case 'connmarkRestore':
        this.counter();
        this.ctLoad(NFT_CT.MARK);
        return this.metaSet(NFT_META.MARK);
      case 'ctZone':
        this.counter();
        this.immediate(NetlinkWriter.hostU16(t.zone));
        return this.ctSet(NFT_CT.ZONE);
      default:
        return assertNever(t);
    }
  }
}
