/**
 * A CNI runtime as the specification describes one ("Execution of Network Configurations"):
 * runs each plugin of a conflist in order for ADD and CHECK and in reverse for DEL, with the
 * CNI_* variables set, the plugin's entry on stdin with the network's name and cniVersion
 * added, and the previous plugin's result threaded in as prevResult (for DEL and CHECK, the
 * cached result of ADD). Debian has no cnitool; this is what it (and libcni) do.
 */
import { execa } from 'execa';

export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: Array<Record<string, unknown> & { type: string }>;
}

export interface Attachment {
  containerId: string;
  netns: string;
  ifname: string;
  args: string;
}

export interface PluginRun {
  plugin: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The parsed stdout (result or error), when it was JSON. */
  output?: Record<string, unknown>;
}

export class CniRuntime {
  /** ADD results per container id, as a runtime caches them for DEL and CHECK. */
  private readonly cache = new Map<string, unknown>();

  constructor(
    readonly conflist: Conflist,
    readonly binDir: string,
    private readonly extraEnv: Record<string, string> = {},
  ) {}

  async execPlugin(command: string, plugin: Conflist['plugins'][number], a: Attachment, prevResult: unknown, extraConf: object = {}): Promise<PluginRun> {
    const conf = { ...plugin, name: this.conflist.name, cniVersion: this.conflist.cniVersion, ...extraConf, ...(prevResult !== undefined ? { prevResult } : {}) };
    const r = await execa(`${this.binDir}/${plugin.type}`, [], {
      input: JSON.stringify(conf),
      reject: false,
      timeout: 60_000,
      env: {
        ...this.extraEnv,
        CNI_COMMAND: command,
        CNI_CONTAINERID: a.containerId,
        CNI_NETNS: a.netns,
        CNI_IFNAME: a.ifname,
        CNI_ARGS: a.args,
        CNI_PATH: this.binDir,
      },
    });
    let output: Record<string, unknown> | undefined;
    try {
      output = JSON.parse(String(r.stdout)) as Record<string, unknown>;
    } catch {
      output = undefined;
    }
    return { plugin: plugin.type, exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), ...(output ? { output } : {}) };
  }

  /** ADD through the chain; stops at the first failing plugin and returns its run. */
  async add(a: Attachment): Promise<{ ok: boolean; result?: unknown; failed?: PluginRun }> {
    let prev: unknown;
    for (const p of this.conflist.plugins) {
      const r = await this.execPlugin('ADD', p, a, prev);
      if (r.exitCode !== 0) return { ok: false, failed: r };
      prev = r.output;
    }
    this.cache.set(a.containerId, prev);
    return { ok: true, result: prev };
  }

  /** CHECK through the chain with the cached ADD result. */
  async check(a: Attachment): Promise<{ ok: boolean; failed?: PluginRun }> {
    for (const p of this.conflist.plugins) {
      const r = await this.execPlugin('CHECK', p, a, this.cache.get(a.containerId));
      if (r.exitCode !== 0) return { ok: false, failed: r };
    }
    return { ok: true };
  }

  /** DEL in reverse order; every plugin runs, the failures are returned. */
  async del(a: Attachment): Promise<PluginRun[]> {
    const failures: PluginRun[] = [];
    for (const p of [...this.conflist.plugins].reverse()) {
      const r = await this.execPlugin('DEL', p, a, this.cache.get(a.containerId));
      if (r.exitCode !== 0) failures.push(r);
    }
    this.cache.delete(a.containerId);
    return failures;
  }
}
