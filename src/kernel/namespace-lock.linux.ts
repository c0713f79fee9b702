/**
 * One interpose transaction at a time per network namespace: read → plan → commit of both
 * families (and a verify's read) under one lock, so concurrent runs serialize and each plans
 * from what the one before it left.
 *
 * Not /run/xtables.lock (nor, in --cni-mode, the namespace file istio-cni locks): the
 * iptables-restore we start takes that lock itself (`-w`) for each family, and flock locks
 * taken through different opens of one file exclude each other, so holding it across the
 * transaction would deadlock our own restore. It would also hold off kube-proxy and every
 * other iptables user on the node for the whole apply. Our lock is a file of our own per
 * namespace, next to the ownership record (/run/interpose/iptables-netns-INODE.lock), and the
 * tools keep taking the xtables lock for their own step, as they must against other writers.
 *
 * The lock is held through the file's open description, which every command started under it
 * inherits (executor.ts holdForCommands): a restore still running when this process is
 * SIGKILLed keeps the next run waiting until it has finished.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InterceptError } from '../errors/intercept-error.js';
import type { LockHold, TransactionLock } from './backend.js';
import { tryLockExclusive } from '../native.js';
import { flockDescriptor, holdForCommands, namespacePath } from './executor.js';
import { defaultStateDir } from './ownership-record.linux.js';

/** Another run held the namespace's lock for longer than we wait. */
export class LockTimeoutError extends InterceptError {
  override name = 'LockTimeoutError';
}

export class NamespaceLock implements TransactionLock {
  private readonly file: string;

  /** @param networkNamespace a name from `ip netns` or a path; undefined = this process's. */
  constructor(
    networkNamespace: string | undefined,
    private readonly dir = defaultStateDir(),
    private readonly waitSeconds = 120,
  ) {
    const nsPath = networkNamespace === undefined ? '/proc/self/ns/net' : namespacePath(networkNamespace);
    this.file = join(dir, `iptables-netns-${statSync(nsPath).ino}.lock`);
  }

  /** The lock file's content: replaced by every changing transaction (see TransactionLock). */
  generation(): string {
    try {
      return readFileSync(this.file, 'utf8');
    } catch {
      return '';
    }
  }

  async acquire(): Promise<LockHold> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const fd = openSync(this.file, 'a', 0o600);
    let locked = false;
    try {
      locked = lockedWithoutWaiting(fd) || (await flockDescriptor(fd, this.waitSeconds));
    } finally {
      if (!locked) closeSync(fd);
    }
    if (!locked) {
      throw new LockTimeoutError(`another interpose run has held ${this.file} for ${this.waitSeconds} s; nothing was changed`);
    }
    const stopSharing = holdForCommands(fd);
    // A new token before a change and after it: a read overlapping the change sees one of them.
    const newGeneration = () => writeFileSync(this.file, `${process.pid} ${Date.now()} ${randomBytes(6).toString('hex')}\n`);
    let changed = false;
    return {
      changing: () => {
        changed = true;
        newGeneration();
      },
      release: () => {
        if (changed) newGeneration();
        stopSharing();
        closeSync(fd);
      },
    };
  }
}

/**
 * The uncontended case, which is nearly every run, through the addon's flock(LOCK_NB): no
 * flock(1) process to start. False when another run holds the lock (then flock(1) waits for
 * it) or when the addon is not available.
 */
function lockedWithoutWaiting(fd: number): boolean {
  try {
    return tryLockExclusive(fd);
  } catch {
    return false;
  }
}
