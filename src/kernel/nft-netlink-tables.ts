/**
 * What every apply asks nf_tables first, over netlink in well under a millisecond where an
 * `nft list tables` process takes several: the ruleset's generation (it counts commits; a batch
 * can be made to fail if it moved), the names of the inet tables, and whether a family holds
 * any table at all (iptables-nft's are ip and ip6 tables).
 */
import { dumpNetfilter } from '../native.js';
import { NETLINK, NFNL, NFPROTO, NFT_MSG, NFTA_GEN_ID, NFTA_TABLE } from '../rules/render/netlink/nf-tables-abi.js';
import { NetlinkWriter } from '../rules/render/netlink/netlink-writer.js';
import { attrString, readNetlinkMessages } from './netlink-reader.js';

/** The dump request: GETTABLE for one family (the kernel answers with that family's tables only). */
export function tablesRequest(family: number): Uint8Array {
  const w = new NetlinkWriter(64);
  const m = w.beginMessage((NFNL.SUBSYS_NFTABLES << 8) | NFT_MSG.GETTABLE, NETLINK.F_REQUEST | NETLINK.F_DUMP, 1, family);
  w.endMessage(m);
  return Uint8Array.from(w.bytes());
}

/** The dump request for the inet family's tables. */
export const inetTablesRequest = (): Uint8Array => tablesRequest(NFPROTO.INET);

/** An inet table as the dump describes it: its name, and its user data when it has some. */
export interface DumpedTable {
  readonly name: string;
  readonly userdata?: Buffer;
}

/** The inet tables in the dump's NEWTABLE messages. */
export function tablesOf(messages: Buffer): DumpedTable[] {
  const tables: DumpedTable[] = [];
  for (const m of readNetlinkMessages(messages)) {
    const name = m.attrs.get(NFTA_TABLE.NAME);
    if (name === undefined || m.family !== NFPROTO.INET) continue;
    const userdata = m.attrs.get(NFTA_TABLE.USERDATA);
    tables.push(userdata ? { name: attrString(name), userdata: Buffer.from(userdata) } : { name: attrString(name) });
  }
  return tables;
}

/**
 * Whether nf_tables holds any table of the ip (4) or ip6 (6) family in the namespace at
 * `netnsPath` ('' for this process's). When it holds none, `ip{,6}tables-nft-save` prints
 * nothing. Throws when the dump fails (no addon, no CAP_NET_ADMIN, no such namespace).
 */
export function holdsIpTables(family: 4 | 6, netnsPath = ''): boolean {
  const wanted = family === 4 ? NFPROTO.IPV4 : NFPROTO.IPV6;
  for (const m of readNetlinkMessages(dumpNetfilter(tablesRequest(wanted), netnsPath))) {
    if (m.family === wanted && m.attrs.has(NFTA_TABLE.NAME)) return true;
  }
  return false;
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
  for (const m of readNetlinkMessages(messages)) {
    const id = m.attrs.get(NFTA_GEN_ID);
    if ((m.type & 0xff) === NFT_MSG.NEWGEN && id !== undefined && id.length >= 4) return id.readUInt32BE(0);
  }
  throw new Error('nf_tables answered GETGEN without a generation id');
}

/** The generation of the namespace at `netnsPath` ('' for this process's). */
export function readGeneration(netnsPath = ''): number {
  return generationOf(dumpNetfilter(generationRequest(), netnsPath));
}
