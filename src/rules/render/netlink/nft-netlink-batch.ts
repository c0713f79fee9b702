/**
 * The nf_tables netlink batch for one apply: what `nft -f` would send for the rendered script
 * (renderNftScript), built directly from the rendered tables. Tables, chains, sets, set
 * elements and rules go in one batch, which the kernel commits as a whole or not at all.
 *
 * Why not the nft tool: at 100k CIDRs nft spends more time parsing and evaluating the script
 * than the kernel spends inserting the elements; here an element costs a few buffer writes.
 *
 * The kernel answers a refused message with an error naming its sequence number, so the caller
 * can say what it was (`describe`); only the last message asks for an ack as well, which tells
 * that the kernel went through the whole batch. (An ack for each of 100k rule messages would
 * overflow the socket's receive queue.)
 */
import type { NftSet, NftTable } from '../nftables.js';
import type { PackedIntervals } from '../../nft-sets.js';
import {
  NETLINK,
  NF_ACCEPT,
  NF_INET_HOOK,
  NFNL,
  NFPROTO,
  NFT_BYTEORDER_BIG_ENDIAN,
  NFT_DATATYPE,
  NFT_EXPR_PAYLOAD,
  NFT_MSG,
  NFT_PORT_FIELD,
  NFT_PROTO_DESC,
  NFT_SET_ELEM_INTERVAL_END,
  NFT_SET_F,
  NFTA_CHAIN,
  NFTA_DATA,
  NFTA_HOOK,
  NFTA_LIST_ELEM,
  NFTA_RULE,
  NFTA_SET,
  NFTA_SET_DESC_SIZE,
  NFTA_SET_ELEM,
  NFTA_SET_ELEM_LIST,
  NFTA_TABLE,
  UDATA_SET,
  UDATA_SET_ELEM_F_INTERVAL_OPEN,
  UDATA_SET_ELEM_FLAGS,
  UDATA_SET_TYPEOF,
} from './nf-tables-abi.js';
import { NLA_F_NESTED, NetlinkWriter, writeHost16 } from './netlink-writer.js';
import { ANONYMOUS_SET_NAME, portSetsOf, writeRuleExpressions, type PortSet } from './nft-rule-compiler.js';
import type { Match } from '../../ir.js';

export interface NftBatch {
  /** The whole batch, BATCH_BEGIN to BATCH_END. */
  readonly bytes: Uint8Array;
  /** Sequence numbers of the messages that asked for an ack (the last one before BATCH_END). */
  readonly acked: readonly number[];
  /** What the message with this sequence number does, for error messages. */
  describe(seq: number): string;
}

export interface NftBatchPlan {
  /** Our tables known to exist, deleted (a clean-up). */
  readonly remove?: readonly string[];
  /** Our tables that may exist: deleted (added first, so the delete cannot fail for absence). */
  readonly replace: readonly string[];
  /** Tables known to be absent: created exclusively (the batch fails if one exists after all). */
  readonly create: readonly string[];
  /** The tables to write. */
  readonly tables: readonly NftTable[];
}

/** A nested list stays below the 64 KiB an attribute can hold; elements go in several messages. */
const ELEMENT_LIST_BUDGET = 60_000;
const FIRST_SEQ = 1;

const msgType = (msg: number) => (NFNL.SUBSYS_NFTABLES << 8) | msg;

/** nft's set user data: key byte order, and for a port set the `tcp dport` it was typed from. */
function setUserData(portSet?: PortSet): Uint8Array {
  const tlv = (type: number, value: Uint8Array) => Buffer.concat([Uint8Array.of(type, value.length), value]);
  const u32 = (n: number) => NetlinkWriter.hostU32(n);
  const parts = [tlv(UDATA_SET.KEYBYTEORDER, u32(NFT_BYTEORDER_BIG_ENDIAN))];
  if (portSet) {
    const typeofData = Buffer.concat([tlv(0, u32(NFT_PROTO_DESC[portSet.protocol])), tlv(1, u32(NFT_PORT_FIELD.dport))]);
    parts.push(
      tlv(UDATA_SET.KEY_TYPEOF, Buffer.concat([tlv(UDATA_SET_TYPEOF.EXPR, u32(NFT_EXPR_PAYLOAD)), tlv(UDATA_SET_TYPEOF.DATA, typeofData)])),
    );
  }
  return Buffer.concat(parts);
}

/**
 * @param generation the ruleset generation the plan was made against: the kernel then refuses
 *   the batch (ERESTART, on BATCH_BEGIN) if anything was committed since, so a change made by
 *   someone else between reading and committing is never overwritten unseen.
 * @param tableUserdata user data for each table the plan writes (see nft-table-stamp.ts).
 */
export function buildNftBatch(plan: NftBatchPlan, generation?: number, tableUserdata?: Uint8Array): NftBatch {
  const w = new NetlinkWriter(initialSize(plan.tables));
  const descriptions: string[] = [];
  let seq = FIRST_SEQ;

  const framing = (type: number) => {
    const m = w.beginMessage(type, NETLINK.F_REQUEST, seq, NFPROTO.UNSPEC, NFNL.SUBSYS_NFTABLES);
    if (type === NFNL.MSG_BATCH_BEGIN && generation !== undefined) w.u32be(NFNL.BATCH_GENID, generation);
    w.endMessage(m);
    descriptions.push(type === NFNL.MSG_BATCH_BEGIN ? 'batch begin' : 'batch end');
    seq++;
  };
  let last: { start: number; seq: number } | undefined;
  const message = (msg: number, flags: number, what: string, body: () => void) => {
    const m = w.beginMessage(msgType(msg), NETLINK.F_REQUEST | flags, seq, NFPROTO.INET);
    body();
    w.endMessage(m);
    descriptions.push(what);
    last = { start: m, seq: seq++ };
  };
  const written = new Set(plan.tables.map((t) => t.name));
  /** `final`: the NEWTABLE that creates a table the plan writes (it carries the user data). */
  const table = (msg: number, flags: number, name: string, what: string, final = false) =>
    message(msg, flags, `${what} table inet ${name}`, () => {
      w.string(NFTA_TABLE.NAME, name);
      if (msg === NFT_MSG.NEWTABLE) w.u32be(NFTA_TABLE.FLAGS, 0);
      if (final && tableUserdata) w.bytesAttr(NFTA_TABLE.USERDATA, tableUserdata);
    });

  framing(NFNL.MSG_BATCH_BEGIN);
  for (const name of plan.remove ?? []) table(NFT_MSG.DELTABLE, 0, name, 'delete');
  for (const name of plan.replace) {
    table(NFT_MSG.NEWTABLE, NETLINK.F_CREATE, name, 'add');
    table(NFT_MSG.DELTABLE, 0, name, 'delete');
  }
  for (const name of plan.create) table(NFT_MSG.NEWTABLE, NETLINK.F_CREATE | NETLINK.F_EXCL, name, 'create', written.has(name));

  let setId = 0;
  for (const t of plan.tables) {
    if (!plan.create.includes(t.name)) table(NFT_MSG.NEWTABLE, NETLINK.F_CREATE, t.name, 'add', true);
    for (const c of t.chains) {
      message(NFT_MSG.NEWCHAIN, NETLINK.F_CREATE, `add chain inet ${t.name} ${c.name}`, () => {
        w.string(NFTA_CHAIN.TABLE, t.name);
        w.string(NFTA_CHAIN.NAME, c.name);
        if (c.base) {
          const hook = w.beginNest(NFTA_CHAIN.HOOK);
          w.u32be(NFTA_HOOK.HOOKNUM, NF_INET_HOOK[c.base.hook]);
          w.i32be(NFTA_HOOK.PRIORITY, c.base.priority);
          w.endNest(hook);
          w.u32be(NFTA_CHAIN.POLICY, NF_ACCEPT);
          w.string(NFTA_CHAIN.TYPE, c.base.type);
        }
      });
    }
    // Sets after the chains and before the rules: the order nft sends them in, so the kernel
    // gives every object the handle it would have had from `nft -f`.
    const namedIds = new Map<string, number>();
    for (const s of t.sets) {
      const id = ++setId;
      namedIds.set(s.name, id);
      writeIntervalSet(t.name, s, id);
    }
    for (const c of t.chains) {
      c.sources.forEach((source, i) => {
        const anonymousIds = new Map<Match, number>();
        for (const ps of portSetsOf(source.rule)) {
          const id = ++setId;
          anonymousIds.set(ps.match, id);
          writePortSet(t.name, ps, id);
        }
        const ids = {
          named: (name: string) => {
            const id = namedIds.get(name);
            if (id === undefined) throw new Error(`rule refers to set ${name}, which table ${t.name} does not declare`);
            return id;
          },
          anonymous: (m: Match) => anonymousIds.get(m)!,
        };
        message(NFT_MSG.NEWRULE, NETLINK.F_CREATE | NETLINK.F_APPEND, `add rule inet ${t.name} ${c.name} ${c.rules[i]}`, () => {
          w.string(NFTA_RULE.TABLE, t.name);
          w.string(NFTA_RULE.CHAIN, c.name);
          const exprs = w.beginNest(NFTA_RULE.EXPRESSIONS);
          writeRuleExpressions(w, source, ids);
          w.endNest(exprs);
        });
      });
    }
  }
  const acked: number[] = [];
  if (last) {
    w.addMessageFlags(last.start, NETLINK.F_ACK);
    acked.push(last.seq);
  }
  framing(NFNL.MSG_BATCH_END);

  return {
    bytes: w.bytes(),
    acked,
    describe: (s) => descriptions[s - FIRST_SEQ] ?? `message ${s}`,
  };

  function writeIntervalSet(tableName: string, s: NftSet, id: number): void {
    const v4 = s.family === 4;
    message(NFT_MSG.NEWSET, NETLINK.F_CREATE, `add set inet ${tableName} ${s.name}`, () => {
      w.string(NFTA_SET.TABLE, tableName);
      w.string(NFTA_SET.NAME, s.name);
      w.u32be(NFTA_SET.FLAGS, NFT_SET_F.INTERVAL);
      w.u32be(NFTA_SET.KEY_TYPE, v4 ? NFT_DATATYPE.IPADDR : NFT_DATATYPE.IP6ADDR);
      w.u32be(NFTA_SET.KEY_LEN, v4 ? 4 : 16);
      w.u32be(NFTA_SET.ID, id);
      w.bytesAttr(NFTA_SET.USERDATA, setUserData());
    });
    writeIntervalElements(tableName, s.name, id, s.intervals);
  }

  function writeIntervalElements(tableName: string, setName: string, id: number, p: PackedIntervals): void {
    const { keys, flags, count } = intervalElements(p);
    const words = p.family === 4 ? 1 : 4;
    const keyBytes = 4 * words;
    let b: Buffer;
    let at = 0;
    // Byte stores rather than Buffer's write methods: their checks cost more than the bytes.
    const header = (length: number, type: number) => {
      writeHost16(b, length, at);
      writeHost16(b, type, at + 2);
      at += 4;
    };
    const u32be = (v: number) => {
      b[at] = v >>> 24;
      b[at + 1] = (v >>> 16) & 0xff;
      b[at + 2] = (v >>> 8) & 0xff;
      b[at + 3] = v & 0xff;
      at += 4;
    };
    for (let j = 0; j < count; ) {
      const from = j;
      message(NFT_MSG.NEWSETELEM, NETLINK.F_CREATE, '', () => {
        w.string(NFTA_SET_ELEM_LIST.TABLE, tableName);
        w.string(NFTA_SET_ELEM_LIST.SET, setName);
        w.u32be(NFTA_SET_ELEM_LIST.SET_ID, id);
        const list = w.beginNest(NFTA_SET_ELEM_LIST.ELEMENTS);
        // Laid out by hand, one element after another (see elementBytes); the open-interval
        // user data is the one variable part.
        for (; j < count && w.since(list) < ELEMENT_LIST_BUDGET; j++) {
          const kind = flags[j]!;
          const size = elementBytes(keyBytes, kind);
          const { buffer, offset } = w.append(size);
          b = buffer;
          at = offset;
          header(size, NFTA_LIST_ELEM | NLA_F_NESTED);
          if (kind === INTERVAL_END) {
            header(8, NFTA_SET_ELEM.FLAGS);
            u32be(NFT_SET_ELEM_INTERVAL_END);
          }
          header(8 + keyBytes, NFTA_SET_ELEM.KEY | NLA_F_NESTED);
          header(4 + keyBytes, NFTA_DATA.VALUE);
          for (let x = 0; x < words; x++) u32be(keys[words * j + x]!);
          if (kind === OPEN_START) {
            header(4 + OPEN_INTERVAL_USERDATA.length, NFTA_SET_ELEM.USERDATA);
            b.set(OPEN_INTERVAL_USERDATA, at);
            at += OPEN_INTERVAL_USERDATA.length;
            b.fill(0, at, offset + size);
          }
        }
        w.endNest(list);
      });
      descriptions[descriptions.length - 1] = `add elements ${from + 1}–${j} of ${count} to set inet ${tableName} ${setName}`;
    }
  }

  function writePortSet(tableName: string, ps: PortSet, id: number): void {
    message(NFT_MSG.NEWSET, NETLINK.F_CREATE, `add anonymous set { ${ps.ports.join(', ')} } in table inet ${tableName}`, () => {
      w.string(NFTA_SET.TABLE, tableName);
      w.string(NFTA_SET.NAME, ANONYMOUS_SET_NAME);
      w.u32be(NFTA_SET.FLAGS, NFT_SET_F.ANONYMOUS | NFT_SET_F.CONSTANT);
      w.u32be(NFTA_SET.KEY_TYPE, NFT_DATATYPE.INET_SERVICE);
      w.u32be(NFTA_SET.KEY_LEN, 2);
      w.u32be(NFTA_SET.ID, id);
      const desc = w.beginNest(NFTA_SET.DESC);
      w.u32be(NFTA_SET_DESC_SIZE, ps.ports.length);
      w.endNest(desc);
      w.bytesAttr(NFTA_SET.USERDATA, setUserData(ps));
    });
    message(NFT_MSG.NEWSETELEM, NETLINK.F_CREATE, `add elements { ${ps.ports.join(', ')} } to an anonymous set`, () => {
      w.string(NFTA_SET_ELEM_LIST.TABLE, tableName);
      w.string(NFTA_SET_ELEM_LIST.SET, ANONYMOUS_SET_NAME);
      w.u32be(NFTA_SET_ELEM_LIST.SET_ID, id);
      const list = w.beginNest(NFTA_SET_ELEM_LIST.ELEMENTS);
      for (const port of ps.ports) {
        const elem = w.beginNest(NFTA_LIST_ELEM);
        const k = w.beginNest(NFTA_SET_ELEM.KEY);
        w.rawAttr(NFTA_DATA.VALUE, 2, (b, at) => b.writeUInt16BE(port, at));
        w.endNest(k);
        w.endNest(elem);
      }
      w.endNest(list);
    });
  }
}

/** An element's kind in intervalElements' `flags` (0, the array's fill, is a range's start). */
export const INTERVAL_END = 1;
/** The start of a range that runs to the family's last address (it has no end element). */
export const OPEN_START = 2;

/** nft's element user data for OPEN_START: NFTNL_UDATA_SET_ELEM_FLAGS = INTERVAL_OPEN. */
const OPEN_INTERVAL_USERDATA = Buffer.concat([Uint8Array.of(UDATA_SET_ELEM_FLAGS, 4), NetlinkWriter.hostU32(UDATA_SET_ELEM_F_INTERVAL_OPEN)]);

/**
 * An interval set's elements as nft 1.0.6 sends them: each range as its first address and,
 * flagged INTERVAL_END, the address after its last — or, for a range that runs to the
 * family's last address, no end and the start marked open — preceded by an INTERVAL_END at 0
 * when the first range does not start there.
 */
export function intervalElements(p: PackedIntervals): { keys: Uint32Array; flags: Uint8Array; count: number } {
  const words = p.family === 4 ? 1 : 4;
  const keys = new Uint32Array(words * (2 * p.count + 1));
  const flags = new Uint8Array(2 * p.count + 1);
  let n = 0;
  if (p.count > 0 && p.starts.subarray(0, words).some((x) => x !== 0)) flags[n++] = INTERVAL_END; // key 0
  for (let i = 0; i < p.count; i++) {
    const start = n++;
    keys.set(p.starts.subarray(words * i, words * i + words), words * start);
    // The address after the range's last one; none after the very last address.
    let carry = 1;
    for (let x = words - 1; x >= 0; x--) {
      const v = p.ends[words * i + x]! + carry;
      keys[words * n + x] = v >>> 0;
      carry = v > 0xffffffff ? 1 : 0;
    }
    if (carry === 0) flags[n++] = INTERVAL_END;
    else flags[start] = OPEN_START;
  }
  return { keys, flags, count: n };
}

/**
 * One element's bytes: the list entry's header, INTERVAL_END flags (8) when it is an end, the
 * key (nest header, value header, the address), and for an open start the user data attribute
 * padded to four bytes.
 */
function elementBytes(keyBytes: number, kind: number): number {
  const flags = kind === INTERVAL_END ? 8 : 0;
  const userdata = kind === OPEN_START ? (4 + OPEN_INTERVAL_USERDATA.length + 3) & ~3 : 0;
  return 4 + flags + 8 + keyBytes + userdata;
}

/** About 48 bytes per IPv6 element, 32 per IPv4 one, plus the rules: one allocation for most batches. */
function initialSize(tables: readonly NftTable[]): number {
  let bytes = 1 << 16;
  for (const t of tables) for (const s of t.sets) bytes += s.intervals.count * (s.family === 4 ? 64 : 96);
  return bytes;
}
