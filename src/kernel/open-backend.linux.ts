/**
 * Which backend a run uses, set up for the namespace: iptables (legacy or nft, as istio-init
 * chooses) or, with --native-nftables, interpose's inet tables. The CLI commands open one
 * here and then make the same calls whichever it is (backend.ts).
 */
import type { RunOptions } from '../config/intercept-config.js';
import { CommandFailedError } from '../errors/command-failed-error.js';
import { NativeError } from '../errors/native-error.js';
import type { Ruleset } from '../rules/ir.js';
import { KernelUnreadableError, type ApplyOptions, type Backend, type KernelState, type RouteSpec } from './backend.js';
import type { Executor } from './executor.js';
import { IptablesBackend } from './iptables-backend.linux.js';
import { chooseIptables, iptablesBinaries } from './iptables-binaries.linux.js';
import { findNft } from './nft-binary.linux.js';
import { FileOwnershipStore, NO_RECORD } from './ownership-record.linux.js';
import { NamespaceLock } from './namespace-lock.linux.js';

/**
 * The nftables backend and what only it uses (its renderer, the netlink rule compiler), loaded
 * when a run asks for it: an init container applying iptables rules, the common case, then
 * compiles a third less code before its first rule (bench/startup.ts).
 */
async function nftablesModules() {
  const [backend, transaction] = await Promise.all([import('./nftables-backend.linux.js'), import('./nft-transaction.linux.js')]);
  return { ...backend, NftToolTransaction: transaction.NftToolTransaction };
}

export type BackendChoice = Pick<RunOptions, 'nativeNftables' | 'forceIptablesBinary' | 'networkNamespace'>;

/**
 * The backend `choice` names, checked to be usable: throws MissingToolError (a
 * KernelUnreadableError) naming what to install when its tools or kernel support are missing,
 * and an InterceptError for a bad INTERPOSE_NFT_COMMIT.
 */
export async function openBackend(executor: Executor, choice: BackendChoice): Promise<Backend> {
  const lock = new NamespaceLock(choice.networkNamespace);
  if (choice.nativeNftables) {
    const { NftablesBackend, chooseNftTransaction, probeNftables } = await nftablesModules();
    const transaction = chooseNftTransaction(executor);
    const version = await probeNftables(executor);
    return new NftablesBackend(executor, {}, findNft(), transaction, version, lock);
  }
  const generation = lock.generation();
  const binaries = await chooseIptables(executor, choice.forceIptablesBinary);
  return new IptablesBackend(executor, binaries, new FileOwnershipStore(choice.networkNamespace), lock, generation);
}

/**
 * The same backend for planning only, where the kernel cannot be read (a dry run without
 * privileges or tools): plan from its emptyState(). It remembers nothing between runs.
 */
async function offlineBackend(executor: Executor, choice: BackendChoice): Promise<Backend> {
  if (choice.nativeNftables) {
    const { NftablesBackend, NftToolTransaction } = await nftablesModules();
    return new NftablesBackend(executor, {}, findNft(), new NftToolTransaction(executor, findNft()));
  }
  return new IptablesBackend(executor, iptablesBinaries(choice.forceIptablesBinary === 'iptables-legacy' ? 'legacy' : 'nft'), NO_RECORD);
}

/**
 * `--dry-run`: the transaction a real run would commit against the kernel as it is now (a
 * cleanup when `cleanup` names the routing to remove). Where the kernel cannot be read (no
 * privileges, no tools), the transaction for a kernel holding none of our rules, with
 * `unreadable` saying why. Bad configuration and drift still throw, as the real run would.
 */
export async function planDryRun(
  executor: Executor,
  choice: BackendChoice,
  ruleset: Ruleset,
  options: ApplyOptions,
  cleanup?: RouteSpec,
): Promise<{ text: string; unreadable?: string }> {
  let backend: Backend;
  let state: KernelState;
  let unreadable: string | undefined;
  try {
    backend = await openBackend(executor, choice);
    state = cleanup ? await backend.read() : await backend.read(ruleset, options);
  } catch (err) {
    if (!(err instanceof KernelUnreadableError || err instanceof CommandFailedError || err instanceof NativeError)) throw err;
    unreadable = err.message;
    backend = await offlineBackend(executor, choice);
    state = backend.emptyState();
  }
  const tx = cleanup ? backend.planCleanup(state, ruleset, cleanup) : backend.plan(state, ruleset, options);
  return { text: tx.text(), ...(unreadable !== undefined ? { unreadable } : {}) };
}
