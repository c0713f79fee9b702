/**
 * A long-running command (a server, `interpose proxy`) whose output is read while it runs and
 * which is stopped by a signal: what the one-shot Executor does not cover. Used by the lab and
 * the tests; kept in kernel/ because only kernel/ starts processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';

/** How a background process ended: its exit status, or the signal that killed it. */
export interface ProcessExit {
  readonly exitCode: number | undefined;
  readonly signal: NodeJS.Signals | undefined;
  /** Why it never started (ENOENT, EACCES …), when it did not. */
  readonly error?: Error;
}

export class BackgroundProcess {
  /** Resolves once the process has ended (never rejects: a failed start resolves with `error`). */
  readonly exited: Promise<ProcessExit>;
  private ended: ProcessExit | undefined;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      const end = (exit: ProcessExit) => {
        if (this.ended) return;
        this.ended = exit;
        resolve(exit);
      };
      // A failed spawn emits 'error' (and may never emit 'close' with a status).
      child.once('error', (error) => child.pid === undefined && end({ exitCode: undefined, signal: undefined, error }));
      child.once('close', (code, signal) => end({ exitCode: code ?? undefined, signal: signal ?? undefined }));
    });
  }

  /** Starts argv with no stdin and stdout/stderr piped to this object's streams. */
  static start(argv: readonly string[], options: { cwd?: string } = {}): BackgroundProcess {
    const [file, ...args] = argv;
    if (!file) throw new Error('empty argv');
    return new BackgroundProcess(spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options }));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get stdout(): Readable {
    return this.child.stdout!;
  }

  get stderr(): Readable {
    return this.child.stderr!;
  }

  /** True once it has exited, been killed, or failed to start. */
  get hasExited(): boolean {
    return this.ended !== undefined || this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Sends `signal` (SIGTERM by default); does nothing once it has exited. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.hasExited) this.child.kill(signal);
  }
}
