/**
 * The sidecar injector's istio-init / istio-validation argument lists (../shared/reference/istio/
 * injector-args.json) and the kernel state they are checked against, shared by the CLI's kernel
 * test (test/kernel/injector-args.test.ts) and the image test (test/image/injector-cases.test.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findNft } from '../../src/kernel/nft-binary.linux.js';
import type { Netns } from './kernel.js';
import { netfilterState, policyRouting } from './netfilter.js';

export interface InjectorCase {
  name: string;
  container: 'istio-init' | 'istio-validation';
  runAsUser: number;
  capabilities: string[];
  readOnlyRootFilesystem: boolean;
  args: string[];
}

/** Beside the repository, not in it: absent when ../shared is not checked out. */
export const INJECTOR_CASES_FILE = join(import.meta.dirname, '..', '..', '..', 'shared', 'reference', 'istio', 'injector-args.json');

export function loadInjectorCases(): InjectorCase[] {
  return (JSON.parse(readFileSync(INJECTOR_CASES_FILE, 'utf8')) as { cases: InjectorCase[] }).cases;
}

/**
 * What a namespace holds that interpose may have written: xtables, nftables, policy routing.
 * nft by absolute path: under npm and npx PATH starts with node_modules/.bin, where @vercel/nft's
 * unrelated `nft` answers `nft list ruleset` with exit 0 and no output. Counters are dropped: the
 * validation probe itself counts on the rules it passes through.
 */
export async function kernelRules(ns: Netns): Promise<string> {
  const nft = String((await ns.exec([findNft(), 'list', 'ruleset'])).stdout).replace(/counter packets \d+ bytes \d+/g, 'counter');
  return `${await netfilterState(ns)}\n### nft\n${nft}\n### routing\n${await policyRouting(ns)}`;
}
