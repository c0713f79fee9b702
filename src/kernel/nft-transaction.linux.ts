/**
 * How the nftables backend commits one transaction: the same plan (tables to replace, to
 * create, to write) either as a netlink batch sent from this process (the default) or as the
 * equivalent script through `nft -f -` (when the native addon is not built, and for
 * comparison). Both are one nf_tables transaction: the kernel commits all of it or nothing, so
 * a refused transaction leaves the previous tables untouched.
 */
import { errnoText } from '../errors/errno-text.js';
import { InterceptError } from '../errors/intercept-error.js';
import { NativeError } from '../errors/native-error.js';
import { sendNetfilterBatch, type NetlinkReply } from '../native.js';
import { renderNftScript } from '../rules/render/nftables.js';
import { runChecked, type Executor } from './executor.js';
import { parseNftTableList } from './nft-binary.linux.js';
import { buildNftBatch, type NftBatch, type NftBatchPlan } from '../rules/render/netlink/nft-netlink-batch.js';
import { readGeneration, readInetTables, type DumpedTable } from './nft-netlink-tables.js';
import { decodeStamp, encodeStamp, nextGeneration } from './nft-table-stamp.js';
import { ERESTART } from '../rules/render/netlink/nf-tables-abi.js';

export interface NftTransaction {
  /** For the log line that starts a run: `netlink` or `nft -f`. */
  readonly name: string;
  /** The names of the inet tables the namespace holds, read the same way (before every apply). */
  tableNames(): Promise<string[]>;
  /**
   * Commits the plan in one transaction, or throws with the kernel's reason having changed
   * nothing; CommitOutcomeUnknownError when the answer was lost and nobody can say which.
   * `digest` (of plan.tables) is stamped on the tables where the path can (nft-table-stamp.ts).
   */
  commit(plan: NftBatchPlan, digest?: Buffer): Promise<void>;
  /**
   * True when, as of the last tableNames(), the tables named are exactly ours as stamped by an
   * earlier commit with this digest and nothing has been committed since. Paths that cannot
   * tell leave it out (and every rerun reads the tables back).
   */
  holdsStamped?(tables: readonly string[], digest: Buffer): boolean;
}

/** The script `nft -f -` reads for a plan. */
export function planScript(plan: NftBatchPlan): string {
  const removals = (plan.remove ?? []).map((name) => `delete table inet ${name}\n`).join('');
  return removals + renderNftScript(plan.tables, plan.replace, plan.create);
}

export class NftToolTransaction implements NftTransaction {
  readonly name = 'nft -f';

  constructor(
    private readonly executor: Executor,
    private readonly nft: string,
  ) {}

  async tableNames(): Promise<string[]> {
    const r = await runChecked(this.executor, [this.nft, 'list', 'tables', 'inet'], { context: 'listing nftables tables' });
    return parseNftTableList(r.stdout);
  }

  async commit(plan: NftBatchPlan): Promise<void> {
    await runChecked(this.executor, [this.nft, '-f', '-'], { input: planScript(plan), context: 'applying the nftables transaction' });
  }
}

/** A batch the kernel refused, with the message it refused and why. */
export class NetlinkRejectedError extends InterceptError {
  override name = 'NetlinkRejectedError';
}


/**
 * The batch was sent but the kernel's answers could not be read in full: it may or may not
 * have been committed. (Not a refusal: nothing says the previous tables are still there.)
 */
export class CommitOutcomeUnknownError extends InterceptError {
  override name = 'CommitOutcomeUnknownError';
}

/**
 * Commits as one netlink batch. The batch is built against the generation read with the
 * tables (tableNames, which the backend calls before deciding anything), so the kernel refuses
 * it if anyone committed in between: what was decided from the state read is what gets applied.
 */
export class NetlinkTransaction implements NftTransaction {
  readonly name = 'netlink';
  private generation: number | undefined;
  private tables: DumpedTable[] = [];
  private settled = false;

  /**
   * @param netnsPath the namespace file to commit in (`/run/netns/NAME`), '' for this process's.
   * @param read how the generation and the tables are read (tests stand in for the kernel).
   */
  constructor(
    private readonly netnsPath = '',
    private readonly read: { generation(netnsPath: string): number; tables(netnsPath: string): DumpedTable[] } = {
      generation: readGeneration,
      tables: readInetTables,
    },
  ) {}

  async tableNames(): Promise<string[]> {
    // The generation first: a commit after it, even before the tables are read, fails ours.
    this.generation = this.read.generation(this.netnsPath);
    this.tables = this.read.tables(this.netnsPath);
    // And again after: only a table list read within one generation can vouch for a stamp (a
    // commit between the two reads could have changed a stamped table without restamping it).
    this.settled = this.read.generation(this.netnsPath) === this.generation;
    return this.tables.map((t) => t.name);
  }

  holdsStamped(names: readonly string[], digest: Buffer): boolean {
    if (this.generation === undefined || !this.settled || names.length === 0) return false;
    return names.every((name) => {
      const stamp = decodeStamp(this.tables.find((t) => t.name === name)?.userdata);
      return stamp !== undefined && stamp.generation === this.generation && stamp.digest.equals(digest);
    });
  }

  async commit(plan: NftBatchPlan, digest?: Buffer): Promise<void> {
    // Our commit turns the generation read into the next one: that is what the stamp records.
    const stamp = digest && this.generation !== undefined ? encodeStamp(nextGeneration(this.generation), digest) : undefined;
    const batch = buildNftBatch(plan, this.generation, stamp);
    let replies: readonly NetlinkReply[];
    try {
      ({ replies } = await sendNetfilterBatch(batch.bytes, this.netnsPath));
    } catch (err) {
      if (err instanceof NativeError && err.syscall === 'recv') {
        throw new CommitOutcomeUnknownError(`${err.message}; run the same command again: it verifies what the kernel holds`, { cause: err });
      }
      throw err;
    }
    checkReplies(batch, replies);
    // Committed: the generation is ours now (a further commit is guarded against it), and the
    // table list read before no longer describes the kernel.
    if (this.generation !== undefined) this.generation = nextGeneration(this.generation);
    this.settled = false;
  }
}

/** Throws unless no message got an error and every one that asked for an ack got one. */
export function checkReplies(batch: NftBatch, replies: readonly NetlinkReply[]): void {
  const failures = replies.filter((r) => r.error !== 0);
  if (failures.some((f) => f.error === ERESTART && batch.describe(f.seq) === 'batch begin')) {
    throw new NetlinkRejectedError(
      'the nf_tables ruleset changed after interpose read it (another commit came in between): nothing was applied; run the command again',
    );
  }
  if (failures.length > 0) {
    const lines = failures.slice(0, 3).map((f) => {
      return `nf_tables refused "${batch.describe(f.seq)}": ${errnoText(f.error)}${f.message ? `: ${f.message}` : ''}`;
    });
    if (failures.length > 3) lines.push(`… and ${failures.length - 3} more`);
    throw new NetlinkRejectedError(lines.join('\n'));
  }
  const answered = new Set(replies.map((r) => r.seq));
  const missing = batch.acked.find((s) => !answered.has(s));
  if (missing !== undefined) {
    throw new NetlinkRejectedError(`nf_tables did not acknowledge "${batch.describe(missing)}": the kernel did not go through the whole batch`);
  }
}
