/**
 * Writes netlink messages: the nlmsghdr framing, an nfgenmsg family header, and
 * type-length-value attributes (nested ones flagged NLA_F_NESTED), each padded to four bytes.
 * One growing buffer for a whole batch, so a 100k-element set costs a few buffer writes per
 * element and no object.
 *
 * Byte order: netlink's own header fields are in host order; nf_tables' attribute numbers
 * (registers, keys, offsets, flags) are big-endian (`u32be`); data values are raw bytes.
 */
import { endianness } from 'node:os';

const NLMSG_HDRLEN = 16;
const NLA_HDRLEN = 4;
export const NLA_F_NESTED = 0x8000;
/** An attribute's length field is 16 bits. */
const NLA_MAX_LENGTH = 0xffff;

const littleEndian = endianness() === 'LE';

const align4 = (n: number) => (n + 3) & ~3;

/** A host-order header field, for code that lays out bytes itself. */
export function writeHost16(b: Uint8Array, value: number, at: number): void {
  b[littleEndian ? at : at + 1] = value & 0xff;
  b[littleEndian ? at + 1 : at] = value >>> 8;
}

export class NetlinkWriter {
  private buf: Buffer;
  private at = 0;

  constructor(initialBytes = 1 << 16) {
    this.buf = Buffer.alloc(initialBytes);
  }

  /** The batch as written (a view of the internal buffer: copy it before writing more). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }

  private reserve(n: number): void {
    if (this.at + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.at + n) size *= 2;
    const grown = Buffer.alloc(size);
    this.buf.copy(grown, 0, 0, this.at);
    this.buf = grown;
  }

  private host16(v: number, at: number): void {
    if (littleEndian) this.buf.writeUInt16LE(v, at);
    else this.buf.writeUInt16BE(v, at);
  }

  private host32(v: number, at: number): void {
    if (littleEndian) this.buf.writeUInt32LE(v >>> 0, at);
    else this.buf.writeUInt32BE(v >>> 0, at);
  }

  /**
   * Starts a message with an nfgenmsg header (family, version 0, resource id big-endian);
   * returns its offset for `endMessage`.
   */
  beginMessage(type: number, flags: number, seq: number, family: number, resourceId = 0): number {
    const nfgenmsg = Uint8Array.of(family, 0 /* NFNETLINK_V0 */, resourceId >>> 8, resourceId & 0xff);
    return this.beginMessageWithHeader(type, flags, seq, nfgenmsg);
  }

  /** Starts a message whose family header (ifaddrmsg, rtmsg and so on, a multiple of 4 bytes) is given. */
  beginMessageWithHeader(type: number, flags: number, seq: number, header: Uint8Array): number {
    this.reserve(NLMSG_HDRLEN + header.length);
    const start = this.at;
    this.host32(0, start); // length, filled in by endMessage
    this.host16(type, start + 4);
    this.host16(flags, start + 6);
    this.host32(seq, start + 8);
    this.host32(0, start + 12); // port id: the kernel's
    this.buf.set(header, start + NLMSG_HDRLEN);
    this.at = start + NLMSG_HDRLEN + header.length;
    return start;
  }

  endMessage(start: number): void {
    this.host32(this.at - start, start);
  }

  /** Sets more flags on the message written at `start` (read-modify-write of its header). */
  addMessageFlags(start: number, flags: number): void {
    const at = start + 6;
    const now = littleEndian ? this.buf.readUInt16LE(at) : this.buf.readUInt16BE(at);
    this.host16(now | flags, at);
  }

  private header(type: number, payloadLength: number): void {
    if (NLA_HDRLEN + payloadLength > NLA_MAX_LENGTH) {
      throw new RangeError(`netlink attribute ${type}: ${payloadLength} bytes exceed an attribute's 64 KiB`);
    }
    this.reserve(align4(NLA_HDRLEN + payloadLength));
    this.host16(NLA_HDRLEN + payloadLength, this.at);
    this.host16(type, this.at + 2);
    this.at += NLA_HDRLEN;
  }

  private pad(): void {
    const end = align4(this.at);
    this.buf.fill(0, this.at, end);
    this.at = end;
  }

  u32be(type: number, value: number): void {
    this.header(type, 4);
    this.buf.writeUInt32BE(value >>> 0, this.at);
    this.at += 4;
  }

  /** A signed 32-bit number, big-endian (chain priorities, verdict codes). */
  i32be(type: number, value: number): void {
    this.header(type, 4);
    this.buf.writeInt32BE(value, this.at);
    this.at += 4;
  }

  /** A NUL-terminated string. */
  string(type: number, value: string): void {
    const n = Buffer.byteLength(value);
    this.header(type, n + 1);
    this.buf.write(value, this.at);
    this.buf[this.at + n] = 0;
    this.at += n + 1;
    this.pad();
  }

  bytesAttr(type: number, value: Uint8Array): void {
    this.header(type, value.length);
    this.buf.set(value, this.at);
    this.at += value.length;
    this.pad();
  }

  /** An attribute whose payload `fill(buffer, offset)` writes in place: `length` bytes. */
  rawAttr(type: number, length: number, fill: (buffer: Buffer, offset: number) => void): void {
    this.header(type, length);
    fill(this.buf, this.at);
    this.at += length;
    this.pad();
  }

  /**
   * Reserves `length` bytes (a multiple of 4) for the caller to fill in place, and returns the
   * buffer and the offset to write at: for runs of attributes whose layout the caller knows,
   * where a call per attribute would cost more than the bytes (100k set elements).
   */
  append(length: number): { buffer: Buffer; offset: number } {
    if (length % 4 !== 0) throw new RangeError(`append: ${length} bytes is not a multiple of 4`);
    this.reserve(length);
    const offset = this.at;
    this.at += length;
    return { buffer: this.buf, offset };
  }

  /** Starts a nested attribute; returns its offset for `endNest`. */
  beginNest(type: number): number {
    this.reserve(NLA_HDRLEN);
    const start = this.at;
    this.host16(0, start);
    this.host16(type | NLA_F_NESTED, start + 2);
    this.at += NLA_HDRLEN;
    return start;
  }

  endNest(start: number): void {
    const length = this.at - start;
    if (length > NLA_MAX_LENGTH) throw new RangeError(`nested netlink attribute of ${length} bytes exceeds 64 KiB`);
    this.host16(length, start);
  }

  /** Bytes written since `start` (to decide when a nested list is full). */
  since(start: number): number {
    return this.at - start;
  }

  /** Host-order u32 and u16 into a byte array (nf_tables' host-order data: marks, uids, zones). */
  static hostU32(value: number): Uint8Array {
    const b = Buffer.alloc(4);
    if (littleEndian) b.writeUInt32LE(value >>> 0);
    else b.writeUInt32BE(value >>> 0);
    return b;
  }

  static hostU16(value: number): Uint8Array {
    const b = Buffer.alloc(2);
    if (littleEndian) b.writeUInt16LE(value);
    else b.writeUInt16BE(value);
    return b;
  }
}
