/**
 * The longest-prefix-match table the registry uses for ServiceEntry `addresses`. Production
 * code uses the native CidrTrie (src/native.ts); the interface lets pure tests run anywhere.
 */
export interface AddressTable {
  insert(cidr: string, value: number): void;
  lookup(ip: string): number | undefined;
  readonly size: number;
}

/** Creates an empty table (production: the native CidrTrie, see ProxyServer). */
export type AddressTableFactory = () => AddressTable;
