/**
 * `interpose proxy` as a child process inside a namespace, with its access log (stdout) and
 * operational log (stderr) collected line by line so callers can wait for and show them.
 */
import { InterceptError } from '../../errors/index.js';
import { BackgroundProcess } from '../../kernel/background-process.js';
import { nodeScriptArgv, PACKAGE_ROOT } from './node-script.js';

export class ProxyProcess {
  /** Access log lines (stdout), in order. */
  readonly accessLog: string[] = [];
  /** Operational log lines (stderr, pino JSON), in order. */
  readonly logs: string[] = [];
  private waiters: (() => void)[] = [];

  private constructor(private readonly child: BackgroundProcess) {
    const collect = (stream: NodeJS.ReadableStream, into: string[]) => {
      let partial = '';
      stream.on('data', (d: Buffer) => {
        const parts = (partial + d.toString()).split('\n');
        partial = parts.pop()!;
        into.push(...parts.filter((l) => l.length > 0));
        for (const w of this.waiters.splice(0)) w();
      });
    };
    collect(child.stdout, this.accessLog);
    collect(child.stderr, this.logs);
    void child.exited.then(() => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /**
   * Starts `interpose proxy ARGS` in namespace `ns` and waits until it says it listens.
   * `command` overrides how interpose is run (default: the way this module runs, sources or dist).
   */
  static async start(
    ns: string,
    args: string[],
    readyTimeoutMs = 20_000,
    command: string[] = nodeScriptArgv('cli/main'),
  ): Promise<ProxyProcess> {
    const [node, ...script] = command;
    const child = BackgroundProcess.start(['ip', 'netns', 'exec', ns, node!, ...script, 'proxy', ...args], { cwd: PACKAGE_ROOT });
    const proxy = new ProxyProcess(child);
    try {
      await proxy.waitFor(() => proxy.logs.some((l) => l.includes('interpose proxy listening')), readyTimeoutMs);
    } catch (err) {
      await proxy.stop();
      throw new InterceptError(`interpose proxy did not start: ${proxy.logs.join('\n')}`, { cause: err });
    }
    return proxy;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get exited(): boolean {
    return this.child.hasExited;
  }

  /** Resolves once `predicate` holds (checked on every new line), rejects after the timeout. */
  waitFor(predicate: () => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
      const check = () => {
        if (predicate()) {
          clearTimeout(timer);
          resolve();
        } else if (this.exited) {
          clearTimeout(timer);
          void this.child.exited.then((r) => reject(new Error(`interpose proxy exited (${r.exitCode ?? r.signal ?? r.error?.message})`)));
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }

  /** Waits for the next access log line (after `after` lines) matching `re`. */
  async nextAccessLog(re: RegExp, after: number, timeoutMs = 5000): Promise<string> {
    const find = () => this.accessLog.slice(after).find((l) => re.test(l));
    await this.waitFor(() => find() !== undefined, timeoutMs);
    return find()!;
  }

  /** Sends SIGHUP and waits for the reload verdict; true when the new config was applied. */
  async reload(timeoutMs = 5000): Promise<boolean> {
    const before = this.logs.length;
    const verdict = () => this.logs.slice(before).find((l) => l.includes('config reloaded') || l.includes('config rejected'));
    this.child.kill('SIGHUP');
    await this.waitFor(() => verdict() !== undefined, timeoutMs);
    return verdict()!.includes('config reloaded');
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 10_000): Promise<number | undefined> {
    if (!this.exited) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      await this.child.exited;
      clearTimeout(timer);
    }
    return (await this.child.exited).exitCode;
  }
}
