/**
 * The nftables backend: reads interpose's inet tables, decides (install, unchanged, drift,
 * replace, clean up), and commits one transaction (a netlink batch from this process, or the
 * same through `nft -f -`: see nft-transaction.linux.ts). nf_tables commits a batch as a
 * whole or not at all, so a failing transaction leaves the previous tables untouched by
 * construction; if a later step fails (the TPROXY routes), the previous tables are put back
 * from their listing, taken before anything changed.
 *
 * Needs the `nft` tool (Debian package "nftables", >= 0.9.3: it reads the tables back) and a
 * kernel with nf_tables.
 */
import { existsSync } from 'node:fs';
import { DriftError } from '../errors/drift-error.js';
import { InterceptError } from '../errors/intercept-error.js';
import type { Ruleset, TproxyRoutes } from '../rules/ir.js';
import { OWNED_NFT_TABLES, renderNftTables, type NftRenderOptions, type NftTable } from '../rules/render/nftables.js';
import { addonLoads, loadAddon } from '../native.js';
import { runChecked, type Executor } from './executor.js';
import type { NftBatchPlan } from '../rules/render/netlink/nft-netlink-batch.js';
import { CommitOutcomeUnknownError, NetlinkTransaction, NftToolTransaction, type NftTransaction } from './nft-transaction.linux.js';
import { ApplyFailedError, type ApplyAction, type ApplyResult } from './iptables-backend.linux.js';
import { MissingToolError } from './iptables-binaries.linux.js';
import { parseNftListing, type ListedTable } from './nft-listing-parser.js';
import { nftTablesDigest } from './nft-table-stamp.js';
import { diffNftTables } from './nftables-plan.js';
import { ensureTproxyRoutes, removeTproxyRoutes, undoTproxyRoutes, type AddedRoutes } from './tproxy-routes.linux.js';
import { ensureIPv6PassthroughAddress } from './passthrough-address.linux.js';

export interface NftCleanupResult {
  readonly removedTables: readonly string[];
  readonly removedRules: number;
  readonly removedRoutes: readonly string[];
}

/** What the kernel holds of ours: parsed tables plus their raw listing (to restore from). */
interface OwnedSnapshot {
  readonly tables: ListedTable[];
  readonly listing: string;
}

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

/**
 * Checks that `nft` is nftables' nft and that the kernel answers nf_tables requests; returns
 * the version line. Throws MissingToolError naming the package to install otherwise.
 */
export async function probeNftables(executor: Executor, nft = findNft()): Promise<string> {
  const v = await executor.run([nft, '--version']).catch(() => undefined);
  if (!v || v.exitCode !== 0 || !/^nftables v/.test(v.stdout.trim())) {
    const found = v && v.exitCode === 0 ? `"${nft}" is not nftables' nft (it printed "${v.stdout.trim().slice(0, 60)}")` : 'the nft command was not found';
    throw new MissingToolError(
      `--native-nftables: ${found}${v?.stderr ? ` (${v.stderr.trim()})` : ''}; install the Debian package "nftables" (nft >= 0.9.3)`,
    );
  }
  const r = await executor.run([nft, 'list', 'tables']);
  if (r.exitCode !== 0) {
    const detail = r.stderr.trim();
    if (/not supported|Protocol not supported|Operation not supported/i.test(detail)) {
      throw new MissingToolError(
        `--native-nftables: the kernel has no nf_tables support (${detail}); load it with "modprobe nf_tables" (Linux >= 4.19 with CONFIG_NF_TABLES; the nft tool comes from the Debian package "nftables")`,
      );
    }
    throw new InterceptError(`--native-nftables: "nft list tables" failed: ${detail}; are we root with CAP_NET_ADMIN?`);
  }
  return v.stdout.trim();
}

/** Environment variable that picks how transactions are committed: `netlink` or `nft`. */
export const NFT_COMMIT_ENV = 'INTERPOSE_NFT_COMMIT';

/**
 * How a run commits: a netlink batch when the native addon loads (the fast path: no nft
 * process parsing a script), else `nft -f -`. INTERPOSE_NFT_COMMIT=nft|netlink forces one.
 */
export function chooseNftTransaction(executor: Executor, env: NodeJS.ProcessEnv = process.env, nft = findNft()): NftTransaction {
  const forced = env[NFT_COMMIT_ENV];
  if (forced !== undefined && forced !== '' && forced !== 'netlink' && forced !== 'nft') {
    throw new InterceptError(`${NFT_COMMIT_ENV}=${JSON.stringify(forced)} is not supported: expected "netlink" or "nft"`);
  }
  const netns = executor.realNamespace;
  if (forced === 'nft') return new NftToolTransaction(executor, nft);
  if (forced === 'netlink') {
    if (netns === undefined) throw new InterceptError(`${NFT_COMMIT_ENV}=netlink: this executor does not run on the real kernel`);
    loadAddon(); // throws saying how to build it
    return new NetlinkTransaction(netns);
  }
  if (netns === undefined || !addonLoads()) return new NftToolTransaction(executor, nft);
  return new NetlinkTransaction(netns);
}

export class NftablesBackend {
  private readonly transaction: NftTransaction;

  /** `transaction` defaults to `nft -f -` through `executor`; the CLI passes chooseNftTransaction's. */
  constructor(
    private readonly executor: Executor,
    private readonly renderOptions: NftRenderOptions = {},
    private readonly nft = findNft(),
    transaction?: NftTransaction,
  ) {
    this.transaction = transaction ?? new NftToolTransaction(executor, nft);
  }

  /** How transactions are committed (`netlink` or `nft -f`), for the run's first log line. */
  get commitVia(): string {
    return this.transaction.name;
  }

  /** The tables `ruleset` installs (what apply compares against and writes). */
  desired(ruleset: Ruleset): NftTable[] {
    return renderNftTables(ruleset, this.renderOptions);
  }

  /** Installs `ruleset`, or verifies it is already there. Throws DriftError without changing anything. */
  async apply(ruleset: Ruleset, options: { reconcile: boolean; forceApply: boolean }): Promise<ApplyResult> {
    // Which tables exist may be a process away: render meanwhile. (Caught here so that a render
    // error does not leave the read's own failure unhandled; awaiting still rethrows it.)
    const present = this.transaction.tableNames();
    present.catch(() => undefined);
    const desired = this.desired(ruleset);
    const ours = (await present).filter((name) => OWNED_NFT_TABLES.includes(name));
    const routes = ruleset.tproxyRoutes;

    // Stamped by our own last commit, nothing committed since, and the same tables wanted:
    // nothing to read back (see nft-table-stamp.ts).
    const digest = this.transaction.holdsStamped ? nftTablesDigest(desired) : undefined;
    const wanted = desired.map((t) => t.name);
    const sameNames = ours.length === wanted.length && wanted.every((name) => ours.includes(name));
    if (!options.forceApply && digest && sameNames && this.transaction.holdsStamped!(wanted, digest)) {
      return this.unchanged(ruleset);
    }

    const before = await this.listOwned(ours);
    const differences = diffNftTables(before.tables, desired);

    let action: ApplyAction;
    if (before.tables.length === 0) action = 'installed';
    else if (differences.length === 0) action = options.forceApply ? 'reapplied' : 'unchanged';
    else if (options.reconcile) action = 'replaced';
    else throw new DriftError(differences, 'nftables tables');

    if (action === 'unchanged') return this.unchanged(ruleset);

    // Tables that exist are deleted and recreated; tables that do not are created with `create`,
    // which fails the whole transaction should one have appeared since the snapshot. (Not
    // `add` + `delete` for those too: a commit that deletes anything makes nft's exit wait
    // for an RCU grace period in the kernel, 4–12 ms here, which a fresh install need not pay.)
    const existing = before.tables.map((t) => t.name);
    const created = desired.map((t) => t.name).filter((name) => !existing.includes(name));
    await this.transact({ replace: existing, create: created, tables: desired }, before, [...existing, ...created], routes, digest);
    await ensureIPv6PassthroughAddress(this.executor, ruleset);
    return { action, differences: action === 'replaced' ? differences : [] };
  }

  /** Tables match; makes sure the routing half is there too (it carries no drift of its own). */
  private async unchanged(ruleset: Ruleset): Promise<ApplyResult> {
    if (ruleset.tproxyRoutes) await ensureTproxyRoutes(this.executor, ruleset.tproxyRoutes);
    await ensureIPv6PassthroughAddress(this.executor, ruleset);
    return { action: 'unchanged', differences: [] };
  }

  /** Deletes interpose's inet tables (and nothing else) and the TPROXY routing for `routes`. */
  async cleanup(routes: { mark: number; table: number }): Promise<NftCleanupResult> {
    const before = await this.snapshot();
    const removedTables = before.tables.map((t) => t.name);
    const removedRules = before.tables.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);
    if (removedTables.length > 0) await this.transact({ remove: removedTables, replace: [], create: [], tables: [] }, before, removedTables);
    const removedRoutes = await removeTproxyRoutes(this.executor, routes.mark, routes.table);
    return { removedTables, removedRules, removedRoutes };
  }

  /** Our tables as the kernel lists them now (empty when none exists). */
  async snapshot(): Promise<OwnedSnapshot> {
    const present = await this.transaction.tableNames();
    return this.listOwned(OWNED_NFT_TABLES.filter((name) => present.includes(name)));
  }

  /** The listing of our tables named in `ours` (which exist), parsed and raw. */
  private async listOwned(ours: readonly string[]): Promise<OwnedSnapshot> {
    if (ours.length === 0) return { tables: [], listing: '' };
    // -y keeps priorities numeric, as the renderer writes them. (nft 1.0.6 cannot run several
    // `list table` commands from one -f script, hence one process per table.)
    let listing = '';
    for (const name of ours) {
      const l = await runChecked(this.executor, [this.nft, '-y', 'list', 'table', 'inet', name], { context: `listing inet ${name}` });
      listing += l.stdout;
    }
    return { tables: parseNftListing(listing), listing };
  }

  /**
   * Commits one transaction, then adds the TPROXY routes. If the transaction fails the kernel
   * changed nothing; if the routes fail, the tables in `touched` are put back as `before`
   * listed them, in one more transaction (through nft, which reads the listing).
   */
  private async transact(
    plan: NftBatchPlan,
    before: OwnedSnapshot,
    touched: readonly string[],
    routes?: TproxyRoutes,
    digest?: Buffer,
  ): Promise<void> {
    try {
      await this.transaction.commit(plan, digest);
    } catch (err) {
      if (err instanceof CommitOutcomeUnknownError) throw new ApplyFailedError(err.message, { cause: err });
      const detail = err instanceof Error ? err.message : String(err);
      throw new ApplyFailedError(`${detail}\n(the transaction was rejected as a whole; the kernel holds what it held before)`, {
        cause: err,
      });
    }
    if (!routes) return;
    const added: AddedRoutes = { rules: [], routes: [] };
    try {
      await ensureTproxyRoutes(this.executor, routes, added);
    } catch (err) {
      await undoTproxyRoutes(this.executor, routes, added).catch(() => undefined);
      const restore = touched.map((name) => `add table inet ${name}\ndelete table inet ${name}\n`).join('') + before.listing;
      const r = await this.executor.run([this.nft, '-f', '-'], { input: restore });
      const detail = err instanceof Error ? err.message : String(err);
      const rolled =
        r.exitCode === 0
          ? 'the nftables tables were rolled back; the kernel holds the tables it held before'
          : `ROLLBACK INCOMPLETE: restoring the previous tables: ${r.stderr.trim()}`;
      throw new ApplyFailedError(`${detail}\n(${rolled})`, { cause: err });
    }
  }
}

