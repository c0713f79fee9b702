/** An in-memory SystemLookups for pure config tests. */
import type { SystemLookups } from '../../src/config/system-lookups.js';

export function fakeSystem(overrides: Partial<{
  users: Record<string, number>;
  groups: Record<string, number>;
  resolvConf: string;
  globalIPv6: boolean;
  namespaces: string[];
}> = {}): SystemLookups {
  const users = overrides.users ?? { root: 0, 'istio-proxy': 1337 };
  const groups = overrides.groups ?? { root: 0, java: 40000, ftp: 21 };
  return {
    lookupUser: async (name) => users[name],
    lookupGroup: async (name) => groups[name],
    readResolvConf: async () => overrides.resolvConf ?? '',
    hasGlobalIPv6: async () => overrides.globalIPv6 ?? false,
    networkNamespaceExists: async (ns) => (overrides.namespaces ?? ['pod1']).includes(ns) || ns === '/proc/1/ns/net',
  };
}
