/**
 * What every apply asks nf_tables first, over netlink in well under a millisecond where an
 * `nft list tables` process takes several: the ruleset's generation (it counts commits; a batch
 * can be made to fail if it moved) and the names of the inet tables.
 */
import { dumpNetfilter } from '../native.js';
import { NETLINK, NFNL, NFPROTO, NFT_MSG, NFTA_GEN_ID, NFTA_TABLE } from './nf-tables-abi.js';
import { NetlinkWriter, readHost16, readHost32 } from './netlink-writer.js';

/** The dump request: GETTABLE for the inet family. */
export function inetTablesRequest(): Uint8Array {
  const w = new NetlinkWriter(64);
  const m = w.beginMessage((NFNL.SUBSYS_NFTABLES << 8) | NFT_MSG.GETTABLE, NETLINK.F_REQUEST | NETLINK.F_DUMP, 1, NFPROTO.INET);
  w.endMessage(m);
  return Uint8Array.from(w.bytes());
}

/** An inet table as the dump describes it: its name, and its user data when it has some. */
export interface DumpedTable {
  readonly name: string;
  readonly userdata?: Buffer;
}

/** The inet tables in the dump's NEWTABLE messages (each: nlmsghdr, nfgenmsg, attributes). */
export function tablesOf(messages: Buffer): DumpedTable[] {
  const tables: DumpedTable[] = [];
  for (let at = 0; at + 20 <= messages.length; ) {
    const length = readHost32(messages, at);
    if (length < 20 || at + length > messages.length) break;
    let name: string | undefined;
    let userdata: Buffer | undefined;
    for (let a = at + 20; a + 4 <= at + length; ) {
      const alen = readHost16(messages, a);
      if (alen < 4) break;
      const type = readHost16(messages, a + 2) & 0x7fff;
      if (type === NFTA_TABLE.NAME) name = messages.toString('utf8', a + 4, a + alen).replace(/\0+$/, '');
      if (type === NFTA_TABLE.USERDATA) userdata = Buffer.from(messages.subarray(a + 4, a + alen));
      a += (alen + 3) & ~3;
    }
    if (name !== undefined && messages[at + 16] === NFPROTO.INET) tables.push(userdata ? { name, userdata } : { name });
    at += (length + 3) & ~3;
  }
  return tables;
}

/** The inet tables of the namespace at `netnsPath` ('' for this process's). */
export function readInetTables(netnsPath = ''): DumpedTable[] {
  return tablesOf(dumpNetfilter(inetTablesRequest(), netnsPath));
}

/** GETGEN, answered by one NEWGEN message (and the ack asked for, which ends the read). */
export function generationRequest(): Uint8Array {
  const w = new NetlinkWriter(64);
  const m = w.beginMessage((NFNL.SUBSYS_NFTABLES << 8) | NFT_MSG.GETGEN, NETLINK.F_REQUEST | NETLINK.F_ACK, 1, NFPROTO.UNSPEC);
  w.endMessage(m);
  return Uint8Array.from(w.bytes());
}

/** NFTA_GEN_ID of the NEWGEN reply. */
export function generationOf(messages: Buffer): number {
  for (let at = 0; at + 20 <= messages.length; ) {
    const length = readHost32(messages, at);
    if (length < 20 || at + length > messages.length) break;
    if ((readHost16(messages, at + 4) & 0xff) === NFT_MSG.NEWGEN) {
      for (let a = at + 20; a + 4 <= at + length; ) {
        const alen = readHost16(messages, a);
        if (alen < 4) break;
        if ((readHost16(messages, a + 2) & 0x7fff) === NFTA_GEN_ID && alen >= 8) return messages.readUInt32BE(a + 4);
        a += (alen + 3) & ~3;
      }
    }
    at += (length + 3) & ~3;
  }
  throw new Error('nf_tables answered GETGEN without a generation id');
}

/** The generation of the namespace at `netnsPath` ('' for this process's). */
export function readGeneration(netnsPath = ''): number {
  return generationOf(dumpNetfilter(generationRequest(), netnsPath));
}
