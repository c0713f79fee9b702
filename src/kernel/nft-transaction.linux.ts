/**
 * How the nftables backend commits one transaction: the same plan (tables to replace, to
 * create, to write) either as a netlink batch sent from this process (the default) or as the
 * equivalent script through `nft -f -` (when the native addon is not built, and for
 * comparison). Both are one nf_tables transaction: the kernel commits all of it or nothing, so
 * a refused transaction leaves the previous tables untouched.
 */
import { getSystemErrorMap } from 'node:util';
import { InterceptError } from '../errors/intercept-error.js';
import { sendNetfilterBatch, type NetlinkReply } from '../native.js';
import { renderNftScript } from '../rules/render/nftables.js';
import { runChecked, type Executor } from './executor.js';
import { buildNftBatch, type NftBatch, type NftBatchPlan } from './nft-netlink-batch.js';

export interface NftTransaction {
  /** For the log line that starts a run: `netlink` or `nft -f`. */
  readonly name: string;
  /** Commits the plan in one transaction, or throws with the kernel's reason and changes nothing. */
  commit(plan: NftBatchPlan): Promise<void>;
}

/** The script `nft -f -` reads for a plan (also what `--dry-run` prints). */
export function planScript(plan: NftBatchPlan): string {
  return renderNftScript(plan.tables, plan.replace, plan.create);
}

export class NftToolTransaction implements NftTransaction {
  readonly name = 'nft -f';

  constructor(
    private readonly executor: Executor,
    private readonly nft: string,
  ) {}

  async commit(plan: NftBatchPlan): Promise<void> {
    await runChecked(this.executor, [this.nft, '-f', '-'], { input: planScript(plan), context: 'applying the nftables transaction' });
  }
}

/** A batch the kernel refused, with the message it refused and why. */
export class NetlinkRejectedError extends InterceptError {
  override name = 'NetlinkRejectedError';
}

/** `EEXIST (file already exists)` for 17: the code and libuv's description. */
function errnoText(errno: number): string {
  const known = getSystemErrorMap().get(-errno);
  return known ? `${known[0]} (${known[1]})` : `errno ${errno}`;
}

export class NetlinkTransaction implements NftTransaction {
  readonly name = 'netlink';

  /** @param netnsPath the namespace file to commit in (`/run/netns/NAME`), '' for this process's. */
  constructor(private readonly netnsPath = '') {}

  async commit(plan: NftBatchPlan): Promise<void> {
    const batch = buildNftBatch(plan);
    const { replies } = await sendNetfilterBatch(batch.bytes, this.netnsPath);
    checkReplies(batch, replies);
  }
}

/** Throws unless every message that asked for an ack got one and none got an error. */
export function checkReplies(batch: NftBatch, replies: readonly NetlinkReply[]): void {
  const failures = replies.filter((r) => r.error !== 0);
  if (failures.length > 0) {
    const lines = failures.slice(0, 3).map((f) => {
      return `nf_tables refused "${batch.describe(f.seq)}": ${errnoText(f.error)}${f.message ? `: ${f.message}` : ''}`;
    });
    if (failures.length > 3) lines.push(`… and ${failures.length - 3} more`);
    throw new NetlinkRejectedError(lines.join('\n'));
  }
  const acked = new Set(replies.map((r) => r.seq));
  const missing = batch.acked.filter((s) => !acked.has(s));
  if (missing.length > 0) {
    throw new NetlinkRejectedError(
      `nf_tables answered ${replies.length} of ${batch.acked.length} messages (first without an answer: "${batch.describe(missing[0]!)}"); ` +
        'the kernel did not process the whole batch',
    );
  }
}
