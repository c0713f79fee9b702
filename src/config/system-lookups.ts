/**
 * What building a config needs to ask the machine: user and group names, resolv.conf, the
 * namespace's addresses. An interface so config parsing stays pure and unit-testable; the
 * Linux implementation lives in src/kernel/system-lookups.linux.ts.
 */
export interface SystemLookups {
  /** uid of a user name, or undefined if it does not resolve. */
  lookupUser(name: string): Promise<number | undefined>;
  /** gid of a group name, or undefined if it does not resolve. */
  lookupGroup(name: string): Promise<number | undefined>;
  /** resolv.conf text as seen from the target namespace ('' when there is none). */
  readResolvConf(networkNamespace: string | undefined): Promise<string>;
  /** True when the target namespace has a global-scope IPv6 address. */
  hasGlobalIPv6(networkNamespace: string | undefined): Promise<boolean>;
  /** True when the named namespace or namespace path exists. */
  networkNamespaceExists(networkNamespace: string): Promise<boolean>;
}
