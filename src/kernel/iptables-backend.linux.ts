/**
 * The iptables backend: reads both families' tables (iptables-save -c), plans one
 * `iptables-restore --noflush` transaction per family (install, unchanged, drift, replace,
 * clean up), and commits them. All or nothing, across both families:
 * - a run holds the namespace's lock (namespace-lock.linux.ts) over read → plan → commit;
 * - before the first restore it writes its intent into the ownership record: what of ours
 *   each family held before. If any step fails — the other family, the TPROXY routes — it
 *   undoes its own changes from that; if it is killed, the next run finds the intent and does
 *   the same (recover()), and verify reports it;
 * - an undo rewrites only our chains and our rules in built-in chains, never whole tables, so
 *   a foreign chain changed meanwhile is left as it is.
 */
import { DriftError } from '../errors/drift-error.js';
import type { IpFamily } from '../net/cidr.js';
import { OWNED_CHAIN_PREFIX, type Ruleset } from '../rules/ir.js';
import { parseIptablesSave, type SavedState } from '../rules/iptables-save-parser.js';
import {
  ApplyFailedError,
  KernelUnreadableError,
  routeComments,
  type ApplyAction,
  type ApplyOptions,
  type ApplyResult,
  type Backend,
  type CommitResult,
  type Comparison,
  type KernelState,
  type RouteSpec,
  type Transaction,
  type TransactionLock,
} from './backend.js';
import { runChecked, type Executor } from './executor.js';
import type { IptablesBinaries } from './iptables-binaries.linux.js';
import {
  currentOwned,
  deletedChains,
  desiredOwned,
  diffOwned,
  foreignJumps,
  isEmptyOwned,
  ownedCounts,
  ownedSnapshot,
  strayInterfaceReturns,
  transactionText,
  undoText,
  type OwnedState,
} from './iptables-plan.js';
import {
  NO_RECORD,
  builtinFromJson,
  builtinOf,
  builtinToJson,
  withRecorded,
  type BuiltinRecord,
  type OwnershipRecord,
  type OwnershipStore,
  type PendingTransaction,
} from './ownership-record.linux.js';
import { ensureTproxyRoutes, removeTproxyRoutes, undoTproxyRoutes, type AddedRoutes } from './tproxy-routes.linux.js';
import { ensureIPv6PassthroughAddress, removeIPv6PassthroughAddress } from './passthrough-address.linux.js';
import { ForeignJumpError } from '../errors/foreign-jump-error.js';

/** One family's tables as read (with counters, so a rollback restores them too). */
export interface FamilyState {
  readonly family: IpFamily;
  readonly saved: SavedState;
  /** False when this family's tools are missing or failed (only ever for an optional IPv6). */
  readonly available: boolean;
}

export interface IptablesState extends KernelState {
  readonly families: readonly FamilyState[];
  /** Built-in-chain rules earlier runs recorded as theirs (see ownership-record.linux.ts). */
  readonly recorded: BuiltinRecord;
  /** The whole record: the ::6 address, a pending (interrupted) transaction. */
  readonly record?: OwnershipRecord;
}

/** One family's `iptables-restore --noflush` input. */
interface RestoreStep {
  readonly family: IpFamily;
  readonly text: string;
}

export interface IptablesTransaction extends Transaction {
  readonly steps: readonly RestoreStep[];
  /** What was read before planning: what a failed commit restores. */
  readonly families: readonly FamilyState[];
  /** An install: the ruleset (its routes, the ::6 address, the record to keep). */
  readonly install?: Ruleset;
  /** A cleanup: the routing to remove. */
  readonly cleanupRoutes?: RouteSpec;
  /** The record read with the state (what a finished or undone transaction writes back to). */
  readonly record?: OwnershipRecord;
}

/** How long a restore waits for the xtables lock other iptables users hold (`-w`). */
const XTABLES_WAIT_SECONDS = '30';

const restoreCommand = (family: IpFamily) => `${family === 4 ? 'iptables' : 'ip6tables'}-restore --noflush`;

function transaction(fields: Omit<IptablesTransaction, 'text'>, trailer: string): IptablesTransaction {
  const body = fields.steps.map((s) => `# ${restoreCommand(s.family)}\n${s.text}`).join('');
  const text = (body === '' ? '# nothing to change in the iptables tables\n' : body) + trailer;
  return { ...fields, text: () => text };
}

/**
 * What counts as ours in a family's built-in chains: what `known` installs, plus what an
 * earlier run recorded — the latter only while some ISTIO_* chain exists, so a record left for
 * a namespace whose inode was reused cannot claim a stranger's rules.
 */
function knownFor(state: FamilyState, known: OwnedState, recorded: BuiltinRecord): OwnedState {
  const ours = [...state.saved.values()].some((t) => t.chains.some((c) => c.startsWith(OWNED_CHAIN_PREFIX)));
  return ours ? withRecorded(known, recorded.get(state.family)) : known;
}

/** Per available family: what is there of ours, what the ruleset wants, and how they differ. */
function familyPlans(state: IptablesState, ruleset: Ruleset) {
  return state.families
    .filter((s) => s.available)
    .map((s) => {
      const desired = ruleset.families.find((f) => f.family === s.family);
      const want: OwnedState = desired ? desiredOwned(desired) : new Map();
      const current = currentOwned(s.saved, knownFor(s, want, state.recorded));
      return { state: s, desired, want, current, differences: diffOwned(current, want, s.family) };
    });
}

/** A kernel that holds nothing of ours, both families available. */
export function emptyIptablesState(): IptablesState {
  return { holdsOurs: false, recorded: new Map(), families: ([4, 6] as const).map((family) => ({ family, saved: new Map(), available: true })) };
}

/** Plans installing `ruleset` over `state` (pure). Throws DriftError when it differs and no reconcile. */
export function planIptablesInstall(state: IptablesState, ruleset: Ruleset, options: ApplyOptions): IptablesTransaction {
  const plans = familyPlans(state, ruleset);
  const differences = plans.flatMap((p) => p.differences);
  let action: ApplyAction;
  if (!state.holdsOurs) action = 'installed';
  else if (differences.length === 0) action = options.forceApply ? 'reapplied' : 'unchanged';
  else if (options.reconcile) action = 'replaced';
  else throw new DriftError(differences);

  const result: ApplyResult = { action, differences: action === 'replaced' ? differences : [] };
  // Unchanged: no rule to write; commit still makes sure the routing half is there.
  const steps =
    action === 'unchanged'
      ? []
      : plans.map((p) => ({ family: p.state.family, text: transactionText(p.current, p.desired) })).filter((s) => s.text !== '');
  refuseForeignJumps(steps, state.families);
  return transaction({ result, steps, families: state.families, install: ruleset, ...recordOf(state) }, routeComments(ruleset));
}

const recordOf = (state: IptablesState) => (state.record ? { record: state.record } : {});

/**
 * A chain of ours the transaction deletes that a foreign chain still jumps to: the kernel would
 * refuse the deletion, and the jump is not ours to remove. Refused before anything changes,
 * naming the foreign chain.
 */
function refuseForeignJumps(steps: readonly RestoreStep[], families: readonly FamilyState[]): void {
  const found = steps.flatMap((s) => {
    const saved = families.find((f) => f.family === s.family)!.saved;
    return foreignJumps(saved, deletedChains(s.text)).map((j) => `IPv${s.family} ${j}`);
  });
  if (found.length > 0) throw new ForeignJumpError(found);
}

export class IptablesBackend implements Backend<IptablesState, IptablesTransaction> {
  readonly name: string;

  constructor(
    private readonly executor: Executor,
    private readonly bin: IptablesBinaries,
    /** Remembers our rules in built-in chains across runs (see ownership-record.linux.ts). */
    private readonly record: OwnershipStore = NO_RECORD,
    /** Serializes transactions on the namespace (namespace-lock.linux.ts). */
    readonly lock?: TransactionLock,
    /** lock.generation() before the binaries' snapshot was read: it is current while that holds. */
    private readonly snapshotGeneration?: string,
  ) {
    this.name = `iptables-${bin.variant}`;
  }

  /** Set when recover() changed the kernel: the binaries' snapshot predates that. */
  private recovered = false;

  /** Both families' iptables-save -c output (IPv6 unavailable when ip6tables fails and `wanted` has no IPv6). */
  async read(wanted?: Ruleset): Promise<IptablesState> {
    const families: FamilyState[] = [];
    // Read during detection, possibly before the lock was ours: good only if no transaction ran since.
    const taken = this.bin.takeSnapshot();
    const current = !this.recovered && (this.lock === undefined || this.lock.generation() === this.snapshotGeneration);
    const snapshot = current ? taken : undefined;
    for (const family of [4, 6] as const) {
      const cached = snapshot?.get(family);
      const r =
        cached !== undefined
          ? { exitCode: 0, stdout: cached, stderr: '' }
          : await this.executor.run([this.bin.save(family), '-c']).catch(() => undefined);
      if (!r || r.exitCode !== 0) {
        if (family === 4 || wanted?.families.some((f) => f.family === 6)) {
          throw new KernelUnreadableError(
            `${this.bin.save(family)} failed${r ? `: ${r.stderr.trim()}` : ''}; is the Debian package "iptables" installed and are we root with CAP_NET_ADMIN?`,
          );
        }
        families.push({ family, saved: new Map(), available: false });
        continue;
      }
      families.push({ family, saved: parseIptablesSave(r.stdout), available: true });
    }
    const record = this.record.load();
    const state: IptablesState = { holdsOurs: false, families, recorded: record.builtin, record };
    // Anything of ours, by the broadest claim: ISTIO_* chains, jumps to them, recorded rules.
    const holdsOurs = familyPlans(state, { families: [] }).some((p) => !isEmptyOwned(p.current));
    return { ...state, holdsOurs };
  }

  emptyState(): IptablesState {
    return emptyIptablesState();
  }

  plan(state: IptablesState, ruleset: Ruleset, options: ApplyOptions): IptablesTransaction {
    // What this ruleset claims as its own counts too (e.g. `-i eth1 -j RETURN` with no record).
    const holdsOurs = state.holdsOurs || familyPlans(state, ruleset).some((p) => !isEmptyOwned(p.current));
    return planIptablesInstall({ ...state, holdsOurs }, ruleset, options);
  }

  /** Removes every ISTIO_* chain, every jump to one, the built-in-chain rules `known` would install. */
  planCleanup(state: IptablesState, known: Ruleset, routes: RouteSpec): IptablesTransaction {
    let rules = 0;
    let chains = 0;
    const steps: RestoreStep[] = [];
    for (const p of familyPlans(state, known)) {
      const n = ownedCounts(p.current);
      rules += n.rules;
      chains += n.chains;
      const text = transactionText(p.current, undefined);
      if (text !== '') steps.push({ family: p.state.family, text });
    }
    refuseForeignJumps(steps, state.families);
    const address = state.record?.passthroughAddress ? '# ip -6 addr del ::6/128 dev lo (interpose added it)\n' : '';
    const trailer = `# ip rule del fwmark ${routes.mark} lookup ${routes.table}; ip route del local default dev lo table ${routes.table} (each family, where present)\n${address}`;
    return transaction(
      { removes: `${chains} chains, ${rules} rules`, steps, families: state.families, cleanupRoutes: routes, ...recordOf(state) },
      trailer,
    );
  }

  compare(state: IptablesState, ruleset: Ruleset): Comparison {
    const plans = familyPlans(state, ruleset);
    const differences = plans.flatMap((p) => p.differences);
    // Only for the families the ruleset installs: the others' leftovers are plain differences.
    const warnings = plans
      .filter((p) => p.desired)
      .flatMap((p) => strayInterfaceReturns(p.state.saved, p.want, differences).map((w) => `IPv${p.state.family} ${w}`));
    const ruleCount = ruleset.families.reduce((n, f) => n + ownedCounts(desiredOwned(f)).rules, 0);
    const p = state.record?.pending;
    return { differences, warnings, ruleCount, ...(p ? { interrupted: { action: p.action, pid: p.pid, started: p.started } } : {}) };
  }

  async commit(tx: IptablesTransaction): Promise<CommitResult> {
    const routes = tx.install?.tproxyRoutes;
    const before = tx.record ?? this.record.load();
    if (tx.install && tx.result?.action === 'unchanged') {
      // Rules match; make sure the routing half is there too (it carries no drift of its own).
      if (routes) await ensureTproxyRoutes(this.executor, routes);
      if ((await ensureIPv6PassthroughAddress(this.executor, tx.install)) === 'added') this.record.save({ ...before, passthroughAddress: true });
      return { removedRoutes: [] };
    }
    const pending = this.intent(tx, before);
    this.record.save({ ...before, pending });
    await this.transact(tx.steps, pending, before, routes);
    if (tx.install) {
      const builtin = new Map(tx.install.families.map((f) => [f.family, builtinOf(desiredOwned(f))]));
      const added = (await ensureIPv6PassthroughAddress(this.executor, tx.install)) === 'added';
      this.record.save({ builtin, ...(before.passthroughAddress || added ? { passthroughAddress: true } : {}) });
      return { removedRoutes: [] };
    }
    const r = tx.cleanupRoutes;
    const removedRoutes = r ? await removeTproxyRoutes(this.executor, r.mark, r.table) : [];
    if (before.passthroughAddress && (await removeIPv6PassthroughAddress(this.executor))) removedRoutes.push('::6/128 on lo');
    this.record.clear();
    return { removedRoutes };
  }

  /** The intent a transaction writes before its first step: what of ours each family holds now. */
  private intent(tx: IptablesTransaction, before: OwnershipRecord): PendingTransaction {
    const previous: PendingTransaction['previous'] = {};
    const adds: PendingTransaction['adds'] = {};
    for (const f of tx.families.filter((s) => s.available)) {
      const desired = tx.install?.families.find((d) => d.family === f.family);
      const want: OwnedState = desired ? desiredOwned(desired) : new Map();
      previous[String(f.family)] = ownedSnapshot(f.saved, knownFor(f, want, before.builtin));
      if (desired) adds[String(f.family)] = builtinToJson(new Map([[f.family, builtinOf(want)]]))[String(f.family)]!;
    }
    return {
      action: tx.install ? 'apply' : 'cleanup',
      pid: process.pid,
      started: new Date().toISOString(),
      previous,
      adds,
      steps: Object.fromEntries(tx.steps.map((s) => [String(s.family), s.text.split('\n').length - 1])),
      before: { families: builtinToJson(before.builtin), ...(before.passthroughAddress ? { passthroughAddress: true } : {}) },
    };
  }

  /**
   * Undoes a transaction an earlier run began and did not finish (its intent is still in the
   * record): every family back to what of ours it held before, the record back to what it was.
   */
  async recover(): Promise<string | undefined> {
    const pending = this.record.load().pending;
    if (!pending) return undefined;
    this.recovered = true;
    const errors = await this.undo(pending);
    if (errors.length > 0) {
      throw new ApplyFailedError(
        `an interrupted ${pending.action} (pid ${pending.pid}, started ${pending.started}) could not be undone: ${errors.join('; ')}; nothing else was changed`,
      );
    }
    this.record.save(beforeRecord(pending));
    return `an interrupted ${pending.action} (pid ${pending.pid}, started ${pending.started}) was found and undone: both families hold what they held before it`;
  }

  /** Applies each family's transaction in turn; on any failure undoes every family. */
  private async transact(
    steps: readonly RestoreStep[],
    pending: PendingTransaction,
    before: OwnershipRecord,
    routes: Ruleset['tproxyRoutes'],
  ): Promise<void> {
    const added: AddedRoutes = { rules: [], routes: [] };
    try {
      for (const step of steps) {
        await runChecked(this.executor, [this.bin.restore(step.family), '-w', XTABLES_WAIT_SECONDS, '--noflush'], {
          input: step.text,
          context: `applying the ${step.family === 4 ? 'IPv4' : 'IPv6'} rules`,
        });
      }
      if (routes) await ensureTproxyRoutes(this.executor, routes, added);
    } catch (err) {
      const rollbackErrors = await this.undo(pending).catch((e: Error) => [e.message]);
      if (routes) await undoTproxyRoutes(this.executor, routes, added).catch(() => undefined);
      if (rollbackErrors.length === 0) this.record.save(before);
      const detail = err instanceof Error ? err.message : String(err);
      const rolled =
        rollbackErrors.length === 0
          ? 'every change was rolled back; the kernel holds what it held before'
          : `ROLLBACK INCOMPLETE: ${rollbackErrors.join('; ')} (the next run retries the undo)`;
      throw new ApplyFailedError(`${detail}\n(${rolled})`, { cause: err });
    }
  }

  /**
   * Puts every family back to what of ours it held before `pending` (read again now: a step
   * may have been applied, half applied, or not at all). Only our chains and our rules in
   * built-in chains are written. Returns the errors, empty when every family is back.
   */
  private async undo(pending: PendingTransaction): Promise<string[]> {
    const errors: string[] = [];
    const recordedBefore = builtinFromJson(pending.before.families);
    const adds = builtinFromJson(pending.adds);
    for (const [familyText, previous] of Object.entries(pending.previous)) {
      const family = Number(familyText) as IpFamily;
      const r = await this.executor.run([this.bin.save(family)]);
      if (r.exitCode !== 0) {
        errors.push(`${this.bin.save(family)}: ${r.stderr.trim()}`);
        continue;
      }
      const saved = parseIptablesSave(r.stdout);
      // Ours now: ISTIO_* chains and jumps, what the record held before, what the transaction adds.
      const known = withRecorded(withRecorded(new Map(), recordedBefore.get(family)), adds.get(family));
      // Untouched (the step never ran, or an earlier undo finished it): nothing to write.
      if (JSON.stringify(ownedSnapshot(saved, known)) === JSON.stringify(previous)) continue;
      const text = undoText(currentOwned(saved, known), previous);
      if (text === '') continue;
      const u = await this.executor.run([this.bin.restore(family), '-w', XTABLES_WAIT_SECONDS, '--noflush'], { input: text });
      if (u.exitCode !== 0) errors.push(`${this.bin.restore(family)} --noflush: ${u.stderr.trim()}`);
    }
    return errors;
  }
}

/** The record as it was before `pending` began. */
function beforeRecord(pending: PendingTransaction): OwnershipRecord {
  return { builtin: builtinFromJson(pending.before.families), ...(pending.before.passthroughAddress ? { passthroughAddress: true } : {}) };
}
