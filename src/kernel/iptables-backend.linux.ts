/**
 * The iptables backend: reads what the kernel holds, decides (install, unchanged, drift,
 * replace, clean up), and applies one `iptables-restore --noflush` transaction per family.
 * All or nothing: the touched tables are snapshotted first, and if any later step fails —
 * the other family, the TPROXY routes — every family already changed is restored from the
 * snapshot before the error is reported.
 */
import { DriftError } from '../errors/drift-error.js';
import { InterceptError } from '../errors/intercept-error.js';
import type { IpFamily } from '../net/cidr.js';
import { OWNED_CHAIN_PREFIX, type FamilyRuleset, type Ruleset, type TproxyRoutes } from '../rules/ir.js';
import { runChecked, type Executor } from './executor.js';
import type { IptablesBinaries } from './iptables-binaries.linux.js';
import {
  currentOwned,
  desiredOwned,
  diffOwned,
  isEmptyOwned,
  touchedTables,
  transactionText,
  type OwnedState,
} from './iptables-plan.js';
import { parseIptablesSave, type SavedState } from './iptables-save-parser.js';
import { NO_RECORD, builtinOf, withRecorded, type BuiltinRecord, type OwnershipStore } from './ownership-record.linux.js';
import { ensureTproxyRoutes, removeTproxyRoutes, undoTproxyRoutes, type AddedRoutes } from './tproxy-routes.linux.js';
import { ensureIPv6PassthroughAddress } from './passthrough-address.linux.js';

export type ApplyAction = 'installed' | 'unchanged' | 'replaced' | 'reapplied';

export interface ApplyResult {
  readonly action: ApplyAction;
  /** Differences found before replacing (reconcile), empty otherwise. */
  readonly differences: readonly string[];
}

export interface CleanupResult {
  readonly removedRules: number;
  readonly removedChains: number;
  readonly removedRoutes: readonly string[];
}

/** A failed apply whose changes were rolled back; the kernel holds what it held before. */
export class ApplyFailedError extends InterceptError {
  override name = 'ApplyFailedError';
}

interface FamilyPlan {
  readonly family: IpFamily;
  readonly current: OwnedState;
  readonly desired: FamilyRuleset | undefined;
}

/** What compare() found; `plans` feed apply, `states` hold what each family's save showed. */
export interface Comparison {
  readonly differences: readonly string[];
  /** True when the kernel holds any rule or chain of ours. */
  readonly anyCurrent: boolean;
  readonly plans: readonly FamilyPlan[];
  readonly states: readonly FamilyState[];
}

interface FamilyState {
  readonly family: IpFamily;
  readonly saved: SavedState;
  /** Present when this family's tools exist and answered. */
  readonly available: boolean;
}

export class IptablesBackend {
  constructor(
    private readonly executor: Executor,
    private readonly bin: IptablesBinaries,
    /** Remembers our rules in built-in chains across runs (see ownership-record.linux.ts). */
    private readonly record: OwnershipStore = NO_RECORD,
  ) {}

  /**
   * What counts as ours in a family's built-in chains: what this configuration installs, plus
   * what an earlier run recorded — the latter only while some ISTIO_* chain exists, so a
   * record left for a namespace whose inode was reused cannot claim a stranger's rules.
   */
  private knownFor(state: FamilyState, known: OwnedState, recorded: BuiltinRecord): OwnedState {
    const ours = [...state.saved.values()].some((t) => t.chains.some((c) => c.startsWith(OWNED_CHAIN_PREFIX)));
    return ours ? withRecorded(known, recorded.get(state.family)) : known;
  }

  /**
   * Compares the kernel with `ruleset` without changing anything: the differences (missing,
   * extra, changed rules; empty when identical), whether anything of ours is there at all,
   * and what apply needs to act on it.
   */
  async compare(ruleset: Ruleset): Promise<Comparison> {
    const states = await this.readStates(ruleset);
    const recorded = this.record.load();
    const plans: FamilyPlan[] = [];
    const differences: string[] = [];
    let anyCurrent = false;
    for (const state of states) {
      if (!state.available) continue;
      const desired = ruleset.families.find((f) => f.family === state.family);
      const want: OwnedState = desired ? desiredOwned(desired) : new Map();
      const current = currentOwned(state.saved, this.knownFor(state, want, recorded));
      anyCurrent ||= !isEmptyOwned(current);
      differences.push(...diffOwned(current, want, state.family));
      plans.push({ family: state.family, current, desired });
    }
    return { differences, anyCurrent, plans, states };
  }

  /** Installs `ruleset`, or verifies it is already there. Throws DriftError without changing anything. */
  async apply(ruleset: Ruleset, options: { reconcile: boolean; forceApply: boolean }): Promise<ApplyResult> {
    const { differences, anyCurrent, plans, states } = await this.compare(ruleset);

    let action: ApplyAction;
    if (!anyCurrent) action = 'installed';
    else if (differences.length === 0) action = options.forceApply ? 'reapplied' : 'unchanged';
    else if (options.reconcile) action = 'replaced';
    else throw new DriftError(differences);

    const routes = ruleset.tproxyRoutes;
    if (action === 'unchanged') {
      // Rules match; make sure the routing half is there too (it carries no drift of its own).
      if (routes) await ensureTproxyRoutes(this.executor, routes);
      await ensureIPv6PassthroughAddress(this.executor, ruleset);
      return { action, differences: [] };
    }

    await this.transact(
      plans.map((p) => ({ family: p.family, text: transactionText(p.current, p.desired) })),
      states,
      routes,
    );
    this.record.save(new Map(ruleset.families.map((f) => [f.family, builtinOf(desiredOwned(f))])));
    await ensureIPv6PassthroughAddress(this.executor, ruleset);
    return { action, differences: action === 'replaced' ? differences : [] };
  }

  /**
   * Removes every ISTIO_* chain, every jump to one, the built-in-chain rules `known` would
   * install, and the TPROXY routing for `routes`. Nothing else is touched.
   */
  async cleanup(known: Ruleset, routes: { mark: number; table: number }): Promise<CleanupResult> {
    const states = await this.readStates({ families: [] });
    const recorded = this.record.load();
    const txs: Array<{ family: IpFamily; text: string }> = [];
    let removedRules = 0;
    let removedChains = 0;
    for (const state of states) {
      if (!state.available) continue;
      const desired = known.families.find((f) => f.family === state.family);
      const current = currentOwned(state.saved, this.knownFor(state, desired ? desiredOwned(desired) : new Map(), recorded));
      for (const t of current.values()) {
        removedChains += t.chains.size;
        for (const rules of t.chains.values()) removedRules += rules.length;
        for (const rules of t.builtin.values()) removedRules += rules.length;
      }
      txs.push({ family: state.family, text: transactionText(current, undefined) });
    }
    await this.transact(txs, states, undefined);
    this.record.clear();
    const removedRoutes = await removeTproxyRoutes(this.executor, routes.mark, routes.table);
    return { removedRules, removedChains, removedRoutes };
  }

  /** Both families' iptables-save -c output (IPv6 marked unavailable when ip6tables is absent). */
  private async readStates(ruleset: Ruleset): Promise<FamilyState[]> {
    const out: FamilyState[] = [];
    const snapshot = this.bin.takeSnapshot();
    for (const family of [4, 6] as const) {
      const cached = snapshot?.get(family);
      const r =
        cached !== undefined
          ? { exitCode: 0, stdout: cached, stderr: '' }
          : await this.executor.run([this.bin.save(family), '-c']).catch(() => undefined);
      if (!r || r.exitCode !== 0) {
        if (family === 4 || ruleset.families.some((f) => f.family === 6)) {
          throw new InterceptError(
            `${this.bin.save(family)} failed${r ? `: ${r.stderr.trim()}` : ''}; is the Debian package "iptables" installed and are we root with CAP_NET_ADMIN?`,
          );
        }
        out.push({ family, saved: new Map(), available: false });
        continue;
      }
      out.push({ family, saved: parseIptablesSave(r.stdout), available: true });
    }
    return out;
  }

  /** Applies each family's transaction in turn; on any failure restores every touched table. */
  private async transact(
    txs: Array<{ family: IpFamily; text: string }>,
    states: readonly FamilyState[],
    routes: TproxyRoutes | undefined,
  ): Promise<void> {
    const attempted: Array<{ family: IpFamily; text: string }> = [];
    const added: AddedRoutes = { rules: [], routes: [] };
    try {
      for (const tx of txs) {
        if (tx.text === '') continue;
        attempted.push(tx);
        await runChecked(this.executor, [this.bin.restore(tx.family), '--noflush'], {
          input: tx.text,
          context: `applying the ${tx.family === 4 ? 'IPv4' : 'IPv6'} rules`,
        });
      }
      if (routes) await ensureTproxyRoutes(this.executor, routes, added);
    } catch (err) {
      const rollbackErrors = await this.rollback(attempted, states);
      if (routes) await undoTproxyRoutes(this.executor, routes, added).catch(() => undefined);
      const detail = err instanceof Error ? err.message : String(err);
      const rolled =
        rollbackErrors.length === 0
          ? 'every change was rolled back; the kernel holds what it held before'
          : `ROLLBACK INCOMPLETE: ${rollbackErrors.join('; ')}`;
      throw new ApplyFailedError(`${detail}\n(${rolled})`, { cause: err });
    }
  }

  /** Restores the snapshot of every table a (possibly partial) transaction touched. */
  private async rollback(attempted: Array<{ family: IpFamily; text: string }>, states: readonly FamilyState[]): Promise<string[]> {
    const errors: string[] = [];
    for (const tx of attempted) {
      const saved = states.find((s) => s.family === tx.family)!.saved;
      const tables = touchedTables(tx.text);
      const blocks = tables.map((t) => saved.get(t)?.block).filter((b): b is string => b !== undefined);
      if (blocks.length > 0) {
        const r = await this.executor.run([this.bin.restore(tx.family), '-c'], { input: blocks.join('') });
        if (r.exitCode !== 0) errors.push(`${this.bin.restore(tx.family)} -c: ${r.stderr.trim()}`);
      }
      // A table that did not exist before (iptables-nft creates them on first use) goes again.
      for (const t of tables.filter((name) => !saved.has(name))) {
        if (this.bin.variant === 'nft') {
          const r = await this.executor.run(['nft', 'delete', 'table', tx.family === 4 ? 'ip' : 'ip6', t]);
          if (r.exitCode !== 0 && !/No such file/.test(r.stderr)) errors.push(`nft delete table ${t}: ${r.stderr.trim()}`);
        } else {
          const r = await this.executor.run([this.bin.restore(tx.family)], { input: `*${t}\nCOMMIT\n` });
          if (r.exitCode !== 0) errors.push(`flushing ${t}: ${r.stderr.trim()}`);
        }
      }
    }
    return errors;
  }


}

