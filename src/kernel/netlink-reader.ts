/**
 * Reads netlink replies that carry a 4-byte family header (nfgenmsg): each message's type,
 * family and top-level attributes. The counterpart of netlink-writer.ts for the few answers
 * interpose reads (table list, generation); malformed framing ends the read, it never throws.
 */
import { endianness } from 'node:os';

const NLMSG_HDRLEN = 16;
const FAMILY_HDRLEN = 4;
const littleEndian = endianness() === 'LE';

const readHost16 = (b: Buffer, at: number): number => (littleEndian ? b.readUInt16LE(at) : b.readUInt16BE(at));
const readHost32 = (b: Buffer, at: number): number => (littleEndian ? b.readUInt32LE(at) : b.readUInt32BE(at));

export interface ReadMessage {
  /** nlmsg_type, e.g. (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE. */
  readonly type: number;
  /** The family header's first byte (nfgen_family). */
  readonly family: number;
  /** Payloads of the top-level attributes by type (NLA_F_NESTED stripped); the last one wins. */
  readonly attrs: ReadonlyMap<number, Buffer>;
}

export function readNetlinkMessages(messages: Buffer): ReadMessage[] {
  const out: ReadMessage[] = [];
  for (let at = 0; at + NLMSG_HDRLEN + FAMILY_HDRLEN <= messages.length; ) {
    const length = readHost32(messages, at);
    if (length < NLMSG_HDRLEN + FAMILY_HDRLEN || at + length > messages.length) break;
    const attrs = new Map<number, Buffer>();
    for (let a = at + NLMSG_HDRLEN + FAMILY_HDRLEN; a + 4 <= at + length; ) {
      const alen = readHost16(messages, a);
      if (alen < 4 || a + alen > at + length) break;
      attrs.set(readHost16(messages, a + 2) & 0x7fff, messages.subarray(a + 4, a + alen));
      a += (alen + 3) & ~3;
    }
    out.push({ type: readHost16(messages, at + 4), family: messages[at + NLMSG_HDRLEN]!, attrs });
    at += (length + 3) & ~3;
  }
  return out;
}

/** A NUL-terminated string attribute's text. */
export const attrString = (payload: Buffer): string => payload.toString('utf8').replace(/\0+$/, '');
