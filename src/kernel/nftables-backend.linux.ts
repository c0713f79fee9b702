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
import { DriftError } from '../errors/drift-error.js';
import { InterceptError } from '../errors/intercept-error.js';
import type { Ruleset, TproxyRoutes } from '../rules/ir.js';
import { OWNED_NFT_TABLES, renderNftTables, type NftRenderOptions, type NftTable } from '../rules/render/nftables.js';
import { addonLoads, loadAddon } from '../native.js';
import {
  ApplyFailedError,
  KernelUnreadableError,
  MissingToolError,
  routeComments,
  type ApplyAction,
  type ApplyOptions,
  type Backend,
  type CommitResult,
  type Comparison,
  type KernelState,
  type RouteSpec,
  type Transaction,
  type TransactionLock,
} from './backend.js';
import { runChecked, type Executor } from './executor.js';
import type { NftBatchPlan } from '../rules/render/netlink/nft-netlink-batch.js';
import { CommitOutcomeUnknownError, NetlinkTransaction, NftToolTransaction, planScript, type NftTransaction } from './nft-transaction.linux.js';
import { NFT_COMMIT_ENV, findNft } from './nft-binary.linux.js';
import { parseNftListing, type ListedTable } from './nft-listing-parser.js';
import { nftTablesDigest } from './nft-table-stamp.js';
import { diffNftTables } from './nftables-plan.js';
import { ensureTproxyRoutes, removeTproxyRoutes, undoTproxyRoutes, type AddedRoutes } from './tproxy-routes.linux.js';
import { ensureIPv6PassthroughAddress } from './passthrough-address.linux.js';

export { findNft } from './nft-binary.linux.js';

export interface NftState extends KernelState {
  /** Our tables that exist, by name. */
  readonly present: readonly string[];
  /** Their listing, parsed and raw (to restore from); empty when `wanted.stamped` vouched for them. */
  readonly tables: readonly ListedTable[];
  readonly listing: string;
  /** The ruleset read() was told about, rendered, and whether the tables hold it by their stamp. */
  readonly wanted?: { readonly ruleset: Ruleset; readonly desired: NftTable[]; readonly digest?: Buffer; readonly stamped: boolean };
}

export interface NftablesTransaction extends Transaction {
  /** The tables to remove, replace, create and write; undefined when nothing is committed. */
  readonly batch?: NftBatchPlan;
  /** The stamp digest of batch.tables, where the commit path stamps (nft-table-stamp.ts). */
  readonly digest?: Buffer;
  /** The tables the batch touches and, as `nft -f` reads it, what they held before (for rollback). */
  readonly touched: readonly string[];
  readonly before: string;
  readonly install?: Ruleset;
  readonly cleanupRoutes?: RouteSpec;
}

function transaction(fields: Omit<NftablesTransaction, 'text'>, trailer: string): NftablesTransaction {
  const body = fields.batch ? `# nft -f -\n${planScript(fields.batch)}` : '# nothing to change in the nftables tables\n';
  const text = body + trailer;
  return { ...fields, text: () => text };
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
    throw new KernelUnreadableError(`--native-nftables: "nft list tables" failed: ${detail}; are we root with CAP_NET_ADMIN?`);
  }
  return v.stdout.trim();
}

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

export class NftablesBackend implements Backend<NftState, NftablesTransaction> {
  private readonly transaction: NftTransaction;

  /** `transaction` defaults to `nft -f -` through `executor`; the CLI passes chooseNftTransaction's. */
  constructor(
    private readonly executor: Executor,
    private readonly renderOptions: NftRenderOptions = {},
    private readonly nft = findNft(),
    transaction?: NftTransaction,
    /** The nft version line (probeNftables), for the name. */
    version?: string,
    /** Serializes transactions on the namespace (namespace-lock.linux.ts). */
    readonly lock?: TransactionLock,
  ) {
    this.transaction = transaction ?? new NftToolTransaction(executor, nft);
    this.name = `nftables (${version ? `${version}, ` : ''}commit via ${this.transaction.name})`;
  }

  readonly name: string;

  /**
   * Our tables and their listing. With `wanted`, a transaction path that stamps (netlink) may
   * vouch that the tables hold exactly it, committed by us with nothing committed since: then
   * there is nothing to read back (see nft-table-stamp.ts), unless options.forceApply.
   */
  async read(wanted?: Ruleset, options?: ApplyOptions): Promise<NftState> {
    // Which tables exist may be a process away: render meanwhile. (Caught here so that a render
    // error does not leave the read's own failure unhandled; awaiting still rethrows it.)
    const names = this.transaction.tableNames();
    names.catch(() => undefined);
    const desired = wanted ? renderNftTables(wanted, this.renderOptions) : undefined;
    const present = (await names).filter((name) => OWNED_NFT_TABLES.includes(name));
    if (wanted && desired) {
      const digest = this.transaction.holdsStamped ? nftTablesDigest(desired) : undefined;
      const want = desired.map((t) => t.name);
      const sameNames = present.length === want.length && want.every((name) => present.includes(name));
      // --force-apply trusts no shortcut: it reads the tables back whatever their stamp says.
      const stamped = !options?.forceApply && digest !== undefined && sameNames && this.transaction.holdsStamped!(want, digest);
      const w = { ruleset: wanted, desired, stamped, ...(digest ? { digest } : {}) };
      if (stamped) return { holdsOurs: true, present, tables: [], listing: '', wanted: w };
      return { ...(await this.listOwned(present)), present, wanted: w };
    }
    return { ...(await this.listOwned(present)), present };
  }

  emptyState(): NftState {
    return { holdsOurs: false, present: [], tables: [], listing: '' };
  }

  /** The ruleset's tables: rendered during read() when it was told, else now. */
  private desiredFor(state: NftState, ruleset: Ruleset): { desired: NftTable[]; digest?: Buffer; stamped: boolean } {
    if (state.wanted?.ruleset === ruleset) return state.wanted;
    const desired = renderNftTables(ruleset, this.renderOptions);
    return { desired, stamped: false, ...(this.transaction.holdsStamped ? { digest: nftTablesDigest(desired) } : {}) };
  }

  plan(state: NftState, ruleset: Ruleset, options: ApplyOptions): NftablesTransaction {
    const { desired, digest, stamped } = this.desiredFor(state, ruleset);
    const differences = stamped ? [] : diffNftTables(state.tables, desired);

    let action: ApplyAction;
    if (!state.holdsOurs) action = 'installed';
    else if (differences.length === 0) action = options.forceApply ? 'reapplied' : 'unchanged';
    else if (options.reconcile) action = 'replaced';
    else throw new DriftError(differences, 'nftables tables');

    const result = { action, differences: action === 'replaced' ? differences : [] };
    const trailer = routeComments(ruleset);
    if (action === 'unchanged') return transaction({ result, touched: [], before: '', install: ruleset }, trailer);

    // Tables that exist are deleted and recreated; tables that do not are created with `create`,
    // which fails the whole transaction should one have appeared since the read. (Not
    // `add` + `delete` for those too: a commit that deletes anything makes nft's exit wait
    // for an RCU grace period in the kernel, 4–12 ms here, which a fresh install need not pay.)
    const existing = [...state.present];
    const created = desired.map((t) => t.name).filter((name) => !existing.includes(name));
    return transaction(
      {
        result,
        batch: { replace: existing, create: created, tables: desired },
        ...(digest ? { digest } : {}),
        touched: [...existing, ...created],
        // (Stamped tables, not listed, only ever plan as unchanged: read() never stamps under forceApply.)
        before: state.listing,
        install: ruleset,
      },
      trailer,
    );
  }

  /** Deletes interpose's inet tables (and nothing else). */
  planCleanup(state: NftState, _known: Ruleset, routes: RouteSpec): NftablesTransaction {
    const removed = state.tables.map((t) => t.name);
    const rules = state.tables.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);
    const removes = `${removed.length ? `tables ${removed.map((t) => `inet ${t}`).join(', ')}` : 'no tables'} (${rules} rules)`;
    const trailer = `# ip rule del fwmark ${routes.mark} lookup ${routes.table}; ip route del local default dev lo table ${routes.table} (each family, where present)\n`;
    const batch = removed.length > 0 ? { remove: removed, replace: [], create: [], tables: [] } : undefined;
    return transaction({ removes, ...(batch ? { batch } : {}), touched: removed, before: state.listing, cleanupRoutes: routes }, trailer);
  }

  compare(state: NftState, ruleset: Ruleset): Comparison {
    const { desired, stamped } = this.desiredFor(state, ruleset);
    const ruleCount = desired.reduce((n, t) => n + t.chains.reduce((m, c) => m + c.rules.length, 0), 0);
    return { differences: stamped ? [] : diffNftTables(state.tables, desired), warnings: [], ruleCount };
  }

  async commit(tx: NftablesTransaction): Promise<CommitResult> {
    const routes = tx.install?.tproxyRoutes;
    if (tx.batch) await this.transact(tx.batch, tx.before, tx.touched, routes, tx.digest);
    else if (routes) await ensureTproxyRoutes(this.executor, routes); // unchanged: the routing half
    if (tx.install) {
      await ensureIPv6PassthroughAddress(this.executor, tx.install);
      return { removedRoutes: [] };
    }
    const r = tx.cleanupRoutes;
    return { removedRoutes: r ? await removeTproxyRoutes(this.executor, r.mark, r.table) : [] };
  }

  /**
   * Our tables for the tracer: as nft's JSON, and as listed with rule handles (-a -y).
   * Undefined when the table list cannot be read (no nft, no nf_tables, no privileges).
   */
  async listForTrace(): Promise<{ json: unknown[]; listing: string } | undefined> {
    const names = await this.transaction.tableNames().catch(() => undefined);
    if (!names) return undefined;
    const present = names.filter((name) => OWNED_NFT_TABLES.includes(name));
    const json: unknown[] = [];
    let listing = '';
    // One process per table: nft 1.0.6 lists one table per invocation.
    for (const name of present) {
      const j = await runChecked(this.executor, [this.nft, '-j', 'list', 'table', 'inet', name], { context: `listing inet ${name} as JSON` });
      json.push(JSON.parse(j.stdout));
      const l = await this.executor.run([this.nft, '-a', '-y', 'list', 'table', 'inet', name]);
      if (l.exitCode === 0) listing += l.stdout;
    }
    return { json, listing };
  }

  /** The listing of our tables named in `ours` (which exist), parsed and raw. */
  private async listOwned(ours: readonly string[]): Promise<{ holdsOurs: boolean; tables: ListedTable[]; listing: string }> {
    if (ours.length === 0) return { holdsOurs: false, tables: [], listing: '' };
    // -y keeps priorities numeric, as the renderer writes them. (nft 1.0.6 cannot run several
    // `list table` commands from one -f script, hence one process per table.)
    let listing = '';
    for (const name of ours) {
      const l = await runChecked(this.executor, [this.nft, '-y', 'list', 'table', 'inet', name], { context: `listing inet ${name}` });
      listing += l.stdout;
    }
    const tables = parseNftListing(listing);
    return { holdsOurs: tables.length > 0, tables, listing };
  }

  /**
   * Commits one transaction, then adds the TPROXY routes. If the transaction fails the kernel
   * changed nothing; if the routes fail, the tables in `touched` are put back as `before`
   * holds them, in one more transaction (through nft, which reads the listing).
   */
  private async transact(plan: NftBatchPlan, before: string, touched: readonly string[], routes?: TproxyRoutes, digest?: Buffer): Promise<void> {
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
      const restore = touched.map((name) => `add table inet ${name}\ndelete table inet ${name}\n`).join('') + before;
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
