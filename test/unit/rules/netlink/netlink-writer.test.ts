/**
 * The netlink writer's framing, checked byte by byte: message headers (host order) with the
 * nfgenmsg header, attributes padded to four bytes, nested attributes flagged and sized, the
 * 64 KiB attribute limit refused, a buffer that grows without losing what it holds, and one
 * message built with it, the ::6 address request, against the bytes `ip` sends.
 */
import test from 'ava';
import { NetlinkWriter } from '../../../../src/rules/render/netlink/netlink-writer.js';
import { passthroughAddressRequest } from '../../../../src/kernel/passthrough-address.linux.js';

const u16 = (b: Uint8Array, at: number) => Buffer.from(b).readUInt16LE(at);
const u32 = (b: Uint8Array, at: number) => Buffer.from(b).readUInt32LE(at);

test('a message: length, type, flags, seq, port 0, then family, version 0 and the big-endian resource id', (t) => {
  const w = new NetlinkWriter(8);
  const m = w.beginMessage(0x0a00, 0x0405, 7, 1, 10);
  w.u32be(1, 0x01020304);
  w.endMessage(m);
  const b = w.bytes();
  t.is(b.length, 16 + 4 + 8);
  t.is(u32(b, 0), 28);
  t.is(u16(b, 4), 0x0a00);
  t.is(u16(b, 6), 0x0405);
  t.is(u32(b, 8), 7);
  t.is(u32(b, 12), 0);
  t.deepEqual([...b.subarray(16, 20)], [1, 0, 0, 10]);
  t.deepEqual([...b.subarray(20, 28)], [8, 0, 1, 0, 1, 2, 3, 4], 'u32be attribute: host-order header, big-endian value');
});

test('strings are NUL-terminated and padded; lengths count the NUL but not the padding', (t) => {
  const w = new NetlinkWriter();
  w.string(3, 'nat');
  w.string(1, 't');
  const b = w.bytes();
  t.deepEqual([...b.subarray(0, 8)], [8, 0, 3, 0, 0x6e, 0x61, 0x74, 0]);
  t.deepEqual([...b.subarray(8, 16)], [6, 0, 1, 0, 0x74, 0, 0, 0]);
  t.is(b.length, 16);
});

test('nested attributes carry NLA_F_NESTED and the length of what they hold; an empty one is four bytes', (t) => {
  const w = new NetlinkWriter();
  const outer = w.beginNest(4);
  w.i32be(2, -100);
  const inner = w.beginNest(1);
  w.bytesAttr(1, Uint8Array.of(9, 9, 9));
  w.endNest(inner);
  w.endNest(outer);
  w.endNest(w.beginNest(2)); // an empty one, as nf_tables' counter carries
  const b = w.bytes();
  t.is(u16(b, 0), 4 + 8 + 4 + 8);
  t.is(u16(b, 2), 4 | 0x8000);
  t.deepEqual([...b.subarray(8, 12)], [0xff, 0xff, 0xff, 0x9c], 'priority -100, big-endian');
  t.is(u16(b, 12), 4 + 8, 'inner nest: header plus the padded 7-byte attribute (as libmnl counts it)');
  t.is(u16(b, 14), 1 | 0x8000);
  t.deepEqual([...b.subarray(24, 28)], [4, 0, 2 | 0, 0x80]);
  t.is(b.length, 28);
});

test('an attribute over 64 KiB is refused with RangeError; a nest that outgrows it too', (t) => {
  const w = new NetlinkWriter();
  t.throws(() => w.bytesAttr(1, new Uint8Array(0x10000)), { instanceOf: RangeError, message: /64 KiB/ });
  const nest = w.beginNest(3);
  for (let i = 0; i < 2000; i++) w.bytesAttr(1, new Uint8Array(40));
  t.throws(() => w.endNest(nest), { instanceOf: RangeError, message: /exceeds 64 KiB/ });
});

test('the buffer grows and keeps what was written', (t) => {
  const w = new NetlinkWriter(16);
  for (let i = 0; i < 1000; i++) w.u32be(i & 0xffff, i);
  const b = Buffer.from(w.bytes());
  t.is(b.length, 8000);
  for (let i = 0; i < 1000; i++) t.is(b.readUInt32BE(8 * i + 4), i);
});

test('host-order helpers write what the kernel reads as a native u32/u16', (t) => {
  t.is(Buffer.from(NetlinkWriter.hostU32(0x539)).readUInt32LE(0), 0x539);
  t.is(Buffer.from(NetlinkWriter.hostU16(7)).readUInt16LE(0), 7);
});

test('the ::6/128 request is byte for byte what `ip -6 addr add ::6/128 dev lo` sends (but its sequence number)', (t) => {
  const six = '00000000000000000000000000000006';
  // From strace: RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE, ifaddrmsg { AF_INET6, /128, 0, universe, lo },
  // IFA_LOCAL then IFA_ADDRESS.
  const expected = `40000000` + `1400` + `0506` + `01000000` + `00000000` + `0a800000` + `01000000` + `14000200${six}` + `14000100${six}`;
  t.is(Buffer.from(passthroughAddressRequest()).toString('hex'), expected);
});
