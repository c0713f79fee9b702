/**
 * The iptables backend: reads both families' tables (iptables-save -c), plans one
 * `iptables-restore --noflush` transaction per family (install, unchanged, drift, replace,
 * clean up), and commits them. All or nothing: the tables a transaction touches were read
 * before anything changed, and if any later step fails — the other family, the TPROXY
 * routes — every family already changed is restored from that read before the error is
 * reported.
 */
import { DriftError } from '../errors/drift-error.js';
import type { IpFamily } from '../net/cidr.js';
import { OWNED_CHAIN_PREFIX, type Ruleset, type TableName } from '../rules/ir.js';
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
} from './backend.js';
import { runChecked, type Executor } from './executor.js';
import type { IptablesBinaries } from './iptables-binaries.linux.js';
import {
  currentOwned,
  desiredOwned,
  diffOwned,
  isEmptyOwned,
  ownedCounts,
  strayInterfaceReturns,
  touchedTables,
  transactionText,
  type OwnedState,
} from './iptables-plan.js';
import { findNft } from './nft-binary.linux.js';
import { NO_RECORD, builtinOf, withRecorded, type BuiltinRecord, type OwnershipStore } from './ownership-record.linux.js';
import { ensureTproxyRoutes, removeTproxyRoutes, undoTproxyRoutes, type AddedRoutes } from './tproxy-routes.linux.js';
import { ensureIPv6PassthroughAddress } from './passthrough-address.linux.js';

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
}

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
  return transaction({ result, steps, families: state.families, install: ruleset }, routeComments(ruleset));
}

export class IptablesBackend implements Backend<IptablesState, IptablesTransaction> {
  readonly name: string;

  constructor(
    private readonly executor: Executor,
    private readonly bin: IptablesBinaries,
    /** Remembers our rules in built-in chains across runs (see ownership-record.linux.ts). */
    private readonly record: OwnershipStore = NO_RECORD,
  ) {
    this.name = `iptables-${bin.variant}`;
  }

  /** Both families' iptables-save -c output (IPv6 unavailable when ip6tables fails and `wanted` has no IPv6). */
  async read(wanted?: Ruleset): Promise<IptablesState> {
    const families: FamilyState[] = [];
    const snapshot = this.bin.takeSnapshot();
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
    const recorded = this.record.load();
    const state: IptablesState = { holdsOurs: false, families, recorded };
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
    const trailer = `# ip rule del fwmark ${routes.mark} lookup ${routes.table}; ip route del local default dev lo table ${routes.table} (each family, where present)\n`;
    return transaction({ removes: `${chains} chains, ${rules} rules`, steps, families: state.families, cleanupRoutes: routes }, trailer);
  }

  compare(state: IptablesState, ruleset: Ruleset): Comparison {
    const plans = familyPlans(state, ruleset);
    const differences = plans.flatMap((p) => p.differences);
    // Only for the families the ruleset installs: the others' leftovers are plain differences.
    const warnings = plans
      .filter((p) => p.desired)
      .flatMap((p) => strayInterfaceReturns(p.state.saved, p.want, differences).map((w) => `IPv${p.state.family} ${w}`));
    const ruleCount = ruleset.families.reduce((n, f) => n + ownedCounts(desiredOwned(f)).rules, 0);
    return { differences, warnings, ruleCount };
  }

  async commit(tx: IptablesTransaction): Promise<CommitResult> {
    const routes = tx.install?.tproxyRoutes;
    if (tx.install && tx.result?.action === 'unchanged') {
      // Rules match; make sure the routing half is there too (it carries no drift of its own).
      if (routes) await ensureTproxyRoutes(this.executor, routes);
      await ensureIPv6PassthroughAddress(this.executor, tx.install);
      return { removedRoutes: [] };
    }
    await this.transact(tx.steps, tx.families, routes);
    if (tx.install) {
      this.record.save(new Map(tx.install.families.map((f) => [f.family, builtinOf(desiredOwned(f))])));
      await ensureIPv6PassthroughAddress(this.executor, tx.install);
      return { removedRoutes: [] };
    }
    this.record.clear();
    const r = tx.cleanupRoutes;
    return { removedRoutes: r ? await removeTproxyRoutes(this.executor, r.mark, r.table) : [] };
  }

  /** Applies each family's transaction in turn; on any failure restores every touched table. */
  private async transact(steps: readonly RestoreStep[], families: readonly FamilyState[], routes: Ruleset['tproxyRoutes']): Promise<void> {
    const attempted: RestoreStep[] = [];
    const added: AddedRoutes = { rules: [], routes: [] };
    try {
      for (const step of steps) {
        attempted.push(step);
        await runChecked(this.executor, [this.bin.restore(step.family), '--noflush'], {
          input: step.text,
          context: `applying the ${step.family === 4 ? 'IPv4' : 'IPv6'} rules`,
        });
      }
      if (routes) await ensureTproxyRoutes(this.executor, routes, added);
    } catch (err) {
      const rollbackErrors = await this.rollback(attempted, families);
      if (routes) await undoTproxyRoutes(this.executor, routes, added).catch(() => undefined);
      const detail = err instanceof Error ? err.message : String(err);
      const rolled =
        rollbackErrors.length === 0
          ? 'every change was rolled back; the kernel holds what it held before'
          : `ROLLBACK INCOMPLETE: ${rollbackErrors.join('; ')}`;
      throw new ApplyFailedError(`${detail}\n(${rolled})`, { cause: err });
    }
  }

  /** Restores the tables a (possibly partial) transaction touched, as read before it. */
  private async rollback(attempted: readonly RestoreStep[], families: readonly FamilyState[]): Promise<string[]> {
    const errors: string[] = [];
    for (const step of attempted) {
      const saved = families.find((s) => s.family === step.family)!.saved;
      const tables = touchedTables(step.text);
      const blocks = tables.map((t) => saved.get(t)?.block).filter((b): b is string => b !== undefined);
      if (blocks.length > 0) {
        const r = await this.executor.run([this.bin.restore(step.family), '-c'], { input: blocks.join('') });
        if (r.exitCode !== 0) errors.push(`${this.bin.restore(step.family)} -c: ${r.stderr.trim()}`);
      }
      // A table that did not exist before (iptables-nft creates them on first use) goes again.
      for (const t of tables.filter((name: TableName) => !saved.has(name))) {
        if (this.bin.variant === 'nft') {
          const r = await this.executor.run([findNft(), 'delete', 'table', step.family === 4 ? 'ip' : 'ip6', t]);
          if (r.exitCode !== 0 && !/No such file/.test(r.stderr)) errors.push(`nft delete table ${t}: ${r.stderr.trim()}`);
        } else {
          const r = await this.executor.run([this.bin.restore(step.family)], { input: `*${t}\nCOMMIT\n` });
          if (r.exitCode !== 0) errors.push(`flushing ${t}: ${r.stderr.trim()}`);
        }
      }
    }
    return errors;
  }
}
