/**
 * The production AddressTable: the native CIDR trie (IPv4 and IPv6 longest-prefix match),
 * loaded lazily so that modules importing the registry do not need the addon.
 */
import type { AddressTable, AddressTableFactory } from './address-table.js';

/** Loads the addon once and returns a factory of native tries. */
export async function nativeAddressTableFactory(): Promise<AddressTableFactory> {
  const { CidrTrie } = await import('../native.js');
  return (): AddressTable => new CidrTrie();
}
