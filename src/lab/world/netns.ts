/**
 * Just enough network-namespace handling for the world: create, run a command inside, write
 * its /etc overrides, delete. Every operation is by name; nothing outside the namespaces and
 * their /etc/netns/NAME directories is touched. Commands run through the kernel's Executor.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SystemExecutor, runChecked, type CommandResult, type Executor } from '../../kernel/executor.js';

/** How `NamedNetns.exec` treats a command. */
export interface NetnsExecOptions {
  /** false: a non-zero exit is returned, not thrown (default true: it throws CommandFailedError). */
  readonly reject?: boolean;
  /** false: keep the final newline of stdout and stderr (default: removed, as a shell's $(…) does). */
  readonly stripFinalNewline?: boolean;
  /** Written to the command's stdin. */
  readonly input?: string;
}

const system: Executor = new SystemExecutor();

const stripNewline = (s: string) => s.replace(/\r?\n$/, '');

export class NamedNetns {
  constructor(readonly name: string) {}

  /**
   * `ip netns add NAME`, brings lo up, and turns forwarding and reverse-path filtering off. A
   * new namespace copies the host's IPv4 settings: where podman or Docker has run,
   * ip_forward=1, and the world would forward a SYN for an address it does not hold instead of
   * refusing it. Neither the pod nor the world routes for anyone.
   */
  static async create(name: string): Promise<NamedNetns> {
    await runChecked(system, ['ip', 'netns', 'add', name]);
    const ns = new NamedNetns(name);
    await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
    await ns.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=0', 'net.ipv6.conf.all.forwarding=0', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);
    return ns;
  }

  /** Runs argv inside the namespace (with its /etc/netns overrides bind-mounted). */
  async exec(argv: readonly string[], options: NetnsExecOptions = {}): Promise<CommandResult> {
    const full = ['ip', 'netns', 'exec', this.name, ...argv];
    const input = options.input !== undefined ? { input: options.input } : {};
    const r = options.reject === false ? await system.run(full, input) : await runChecked(system, full, input);
    if (options.stripFinalNewline === false) return r;
    return { exitCode: r.exitCode, stdout: stripNewline(r.stdout), stderr: stripNewline(r.stderr) };
  }

  /** Writes /etc/netns/NAME/PATH, which `ip netns exec` mounts over /etc/<first component>. */
  writeEtc(path: string, content: string | Buffer): void {
    const file = `/etc/netns/${this.name}/${path}`;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }

  /** Deletes the namespace and its /etc/netns directory; safe to call twice. */
  async destroy(): Promise<void> {
    await system.run(['ip', 'netns', 'del', this.name]);
    rmSync(`/etc/netns/${this.name}`, { recursive: true, force: true });
  }
}
