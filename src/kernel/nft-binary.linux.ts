/**
 * Finding nftables' `nft` and reading the inet table list it prints: shared by the nftables
 * backend, the iptables backend (iptables-nft's rollback deletes tables it created) and the
 * readers of the kernel for verify and trace.
 */
import { existsSync } from 'node:fs';

/**
 * Environment variable that picks how --native-nftables commits: `netlink` or `nft` (this
 * binary). Read by nftables-backend.linux.ts; here so the CLI's help names it without loading
 * that backend.
 */
export const NFT_COMMIT_ENV = 'INTERPOSE_NFT_COMMIT';

/** Where distributions install nftables' nft. */
const NFT_LOCATIONS = ['/usr/sbin/nft', '/sbin/nft', '/usr/local/sbin/nft', '/usr/bin/nft'];

/**
 * The nft binary to run, by absolute path when it is in a standard place. Not simply `nft` from
 * PATH: under npm and npx, node_modules/.bin comes first, and @vercel/nft (a build-tool
 * dependency) installs an unrelated `nft` there. A namespaced executor sees the same files.
 */
export function findNft(exists: (path: string) => boolean = existsSync): string {
  return NFT_LOCATIONS.find((p) => exists(p)) ?? 'nft';
}

/** The inet table names in `nft list tables [inet]` output. */
export function parseNftTableList(stdout: string): string[] {
  return [...stdout.matchAll(/^table inet (\S+)$/gm)].map((m) => m[1]!);
}
