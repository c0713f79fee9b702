/**
 * The one interface both rule backends implement (iptables-backend.linux.ts,
 * nftables-backend.linux.ts): read what the kernel holds of ours, plan a ruleset (or a
 * cleanup) into a Transaction, commit it. The steps are separate so that what a run decides
 * from is exactly what it read, and so that a caller can hold a lock or write an intent
 * record around read → plan → commit. `Transaction.text()` is the `--dry-run` output and
 * exactly what commit() hands the kernel, so a dry run shows what a real run would apply
 * against the kernel as it is now, not against an empty one.
 */
import { InterceptError } from '../errors/intercept-error.js';
import type { Ruleset } from '../rules/ir.js';

/** What an apply did: nothing of ours was there, it was there already, or it was redone. */
export type ApplyAction = 'installed' | 'unchanged' | 'replaced' | 'reapplied';

export interface ApplyOptions {
  /** Replace rules of ours that differ from the ruleset (else that is a DriftError). */
  readonly reconcile: boolean;
  /** Rewrite the rules even when the kernel holds them already. */
  readonly forceApply: boolean;
}

export interface ApplyResult {
  readonly action: ApplyAction;
  /** Differences found before replacing (reconcile), empty otherwise. */
  readonly differences: readonly string[];
  /** What the run found of an earlier, interrupted transaction and how it undid it. */
  readonly recovered?: string;
}

/** A failed apply whose changes were rolled back; the kernel holds what it held before. */
export class ApplyFailedError extends InterceptError {
  override name = 'ApplyFailedError';
}

/** What the kernel holds could not be read (no privileges, no tool): read() changed nothing. */
export class KernelUnreadableError extends InterceptError {
  override name = 'KernelUnreadableError';
}

/** A tool or kernel feature a backend needs is missing; the message names what to install. */
export class MissingToolError extends KernelUnreadableError {
  override name = 'MissingToolError';
}

/** The TPROXY policy routing a cleanup removes (the mark and table the configuration names). */
export interface RouteSpec {
  readonly mark: number;
  readonly table: number;
}

/** What a backend read: opaque to callers, handed back to the same backend's plan(). */
export interface KernelState {
  /** True when the kernel holds any rule, chain or table of ours. */
  readonly holdsOurs: boolean;
}

/** An apply or cleanup that wrote its intent and did not finish (killed, or still running). */
export interface InterruptedTransaction {
  readonly action: 'apply' | 'cleanup';
  /** The process that began it, and when (ISO 8601). */
  readonly pid: number;
  readonly started: string;
}

/** How the kernel compares with a ruleset (verify, drift). */
export interface Comparison {
  /**
   * Set when a transaction began and never finished: the kernel may hold part of it (one
   * family new, the other old). The next apply or cleanup undoes it before doing its own.
   */
  readonly interrupted?: InterruptedTransaction;
  /** Missing, extra and changed rules; empty when the kernel holds exactly the ruleset. */
  readonly differences: readonly string[];
  /** Rules that look like an earlier configuration's but are not provably ours. */
  readonly warnings: readonly string[];
  /** How many rules the ruleset installs with this backend. */
  readonly ruleCount: number;
}

/** One planned change to the kernel, made by plan() or planCleanup(), committed by commit(). */
export interface Transaction {
  /** For an install: what committing does. Undefined for a cleanup. */
  readonly result?: ApplyResult;
  /** For a cleanup: what goes, as the log line says it ("3 chains, 20 rules"). */
  readonly removes?: string;
  /**
   * Every command's input, each after a `# command` line, then the routing steps as comments:
   * what commit() sends (for a netlink commit, the nft script equivalent of the batch).
   */
  text(): string;
}

/** What commit() found and did beyond the transaction text. */
export interface CommitResult {
  /** TPROXY routing removed by a cleanup (found when committing), as `ip` would name it. */
  readonly removedRoutes: readonly string[];
}

/** A held TransactionLock. */
export interface LockHold {
  /** Says a transaction is about to change the kernel (a new generation()), before it does. */
  changing(): void;
  release(): void;
}

/** Serializes transactions on one kernel (network namespace) across processes. */
export interface TransactionLock {
  acquire(): Promise<LockHold>;
  /**
   * A token every changing transaction replaces: a read made before the lock was taken is
   * still current when the token is the same as when the read began.
   */
  generation(): string;
}

/**
 * A rule backend. plan() and commit() accept only what the same backend's read() and plan()
 * returned (the type parameters say so; callers holding `Backend` pass them straight through).
 */
export interface Backend<State extends KernelState = KernelState, Tx extends Transaction = Transaction> {
  /** Names the backend in the run's first log line, e.g. `iptables-nft`. */
  readonly name: string;
  /**
   * Reads what the kernel holds of ours. `wanted` is the ruleset about to be planned, if any,
   * with the options it will be planned with: a backend may skip reading back what it can
   * prove is there already (nftables stamps; never with forceApply) and needs to know which
   * families are required. Throws KernelUnreadableError (or the command's or netlink's error)
   * when the kernel cannot be read.
   */
  read(wanted?: Ruleset, options?: ApplyOptions): Promise<State>;
  /** What a kernel holding nothing of ours reads as (a dry run where the kernel cannot be read). */
  emptyState(): State;
  /** Plans installing `ruleset` over `state`. Throws DriftError (no reconcile) changing nothing. */
  plan(state: State, ruleset: Ruleset, options: ApplyOptions): Tx;
  /** Plans removing everything of ours; `known` also claims its built-in-chain rules. */
  planCleanup(state: State, known: Ruleset, routes: RouteSpec): Tx;
  /** Compares `state` with `ruleset` without planning anything. */
  compare(state: State, ruleset: Ruleset): Comparison;
  /** Commits `tx` all or nothing: on failure, throws ApplyFailedError saying what was rolled back. */
  commit(tx: Tx): Promise<CommitResult>;
  /** Held over read → plan → commit by applyRuleset and cleanupRules (and verify's read). */
  readonly lock?: TransactionLock;
  /**
   * Finds a transaction an earlier run began and did not finish, and undoes it (the kernel
   * then holds what it held before that run). Returns what it did, undefined when nothing was
   * pending. Called under the lock, before read().
   */
  recover?(): Promise<string | undefined>;
}

/** Runs `fn` holding the backend's lock, if it has one. */
export async function underLock<T>(backend: Pick<Backend, 'lock'>, fn: (hold: LockHold | undefined) => Promise<T>): Promise<T> {
  const hold = await backend.lock?.acquire();
  try {
    return await fn(hold);
  } finally {
    hold?.release();
  }
}

/**
 * Reads, plans and commits `ruleset`: the one apply path for both backends. Under the
 * backend's lock, so a concurrent run plans from what this one leaves; an earlier run's
 * interrupted transaction is undone first.
 */
export async function applyRuleset(backend: Backend, ruleset: Ruleset, options: ApplyOptions): Promise<ApplyResult> {
  return underLock(backend, async (hold) => {
    const recovered = await backend.recover?.();
    const tx = backend.plan(await backend.read(ruleset, options), ruleset, options);
    hold?.changing();
    await backend.commit(tx);
    return recovered === undefined ? tx.result! : { ...tx.result!, recovered };
  });
}

/** Reads, plans and commits the removal of everything of ours: the one cleanup path (locked, as applyRuleset). */
export async function cleanupRules(
  backend: Backend,
  known: Ruleset,
  routes: RouteSpec,
): Promise<{ removes: string; recovered?: string } & CommitResult> {
  return underLock(backend, async (hold) => {
    const recovered = await backend.recover?.();
    const tx = backend.planCleanup(await backend.read(), known, routes);
    hold?.changing();
    const r = await backend.commit(tx);
    return { removes: tx.removes!, ...r, ...(recovered !== undefined ? { recovered } : {}) };
  });
}

/** The `# ip …` lines a transaction's text ends with: the routing commit() adds where missing. */
export function routeComments(ruleset: Ruleset): string {
  let out = '';
  if (ruleset.tproxyRoutes) {
    const { mark, table, families } = ruleset.tproxyRoutes;
    for (const fam of families) {
      out += `# ip -${fam} rule add fwmark ${mark} lookup ${table}\n# ip -${fam} route add local default dev lo table ${table}\n`;
    }
  }
  return out;
}
