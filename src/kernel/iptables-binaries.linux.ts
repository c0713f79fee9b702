/**
 * Which iptables to drive. As istio-init does: iptables-legacy when it already holds rules
 * (someone on this host uses it), else iptables-nft; `--force-iptables-binary` overrides.
 *
 * The choice needs every variant's current rules, and the apply needs the chosen variant's
 * rules with counters, so detection reads all four saves at once and hands the chosen ones on.
 * Each process costs about as much as the restore itself, so a save that can only print nothing
 * (its family holds no table) is not started: in a pod's fresh namespace the restore is the
 * apply's one process.
 */
import type { IptablesBinaryChoice } from '../config/intercept-config.js';
import { MissingToolError } from './backend.js';
import type { IpFamily } from '../net/cidr.js';
import type { Executor } from './executor.js';
import { readFileSync } from 'node:fs';
import { NativeError } from '../errors/native-error.js';
import { readProcNetIn } from '../native.js';
import { holdsIpTables } from './nft-netlink-tables.js';
import { readSavesDirectly } from './xtables-saves.linux.js';

export type IptablesVariant = 'legacy' | 'nft';

export interface IptablesBinaries {
  readonly variant: IptablesVariant;
  save(family: IpFamily): string;
  restore(family: IpFamily): string;
  /**
   * `save -c` output read during detection, per family (undefined: the tool failed or is
   * missing). Taken once by the backend; later reads go to the kernel again.
   */
  takeSnapshot(): Map<IpFamily, string | undefined> | undefined;
}


const TOOL = (variant: IptablesVariant, family: IpFamily, op: 'save' | 'restore') =>
  `${family === 4 ? 'iptables' : 'ip6tables'}-${variant}-${op}`;

/** The tools of `variant`; `snapshot` is what detection already read (see takeSnapshot). */
export function iptablesBinaries(variant: IptablesVariant, snapshot?: Map<IpFamily, string | undefined>): IptablesBinaries {
  let pending = snapshot;
  return {
    variant,
    save: (f) => TOOL(variant, f, 'save'),
    restore: (f) => TOOL(variant, f, 'restore'),
    takeSnapshot: () => {
      const s = pending;
      pending = undefined;
      return s;
    },
  };
}

/** Output of each `*-save -c` (undefined when the tool is missing or failed). */
type Saves = Map<string, string | undefined>;

const MARK = '### interpose-save';

/**
 * Whether nf_tables in the executor's namespace holds no ip (4) / ip6 (6) table, asked over
 * netlink: then that family's iptables-nft-save prints nothing and need not be started (a
 * pod's fresh namespace, where an init container or the CNI plugin runs, holds none). False
 * when it holds one or when the question cannot be asked here (no addon, a namespace only
 * reachable through the executor): the save then runs as before.
 */
function nftFamilyEmpty(executor: Executor, family: IpFamily): boolean {
  if (executor.realNamespace === undefined) return false;
  try {
    return !holdsIpTables(family, executor.realNamespace);
  } catch {
    return false;
  }
}

/**
 * Whether legacy iptables holds no table of `family` in the executor's namespace: its
 * /proc/net/ip{,6}_tables_names lists none (or is missing: the legacy modules are not loaded).
 * Another namespace's file is read by a thread of this process that enters it (the addon).
 */
function legacyFamilyEmpty(executor: Executor, family: IpFamily): boolean {
  const name = family === 4 ? 'ip_tables_names' : 'ip6_tables_names';
  const namespace = executor.realNamespace;
  if (namespace === undefined) return false;
  try {
    return (namespace === '' ? readFileSync(`/proc/net/${name}`, 'utf8') : readProcNetIn(namespace, name)).trim() === '';
  } catch (err) {
    // Missing file: no legacy table anywhere. Anything else: unknown, so the save decides.
    return namespace === '' || (err instanceof NativeError && err.code === 'ENOENT' && err.syscall === 'read');
  }
}

/**
 * Reads all four saves. A save known to print nothing in this namespace (legacyFamilyEmpty,
 * nftFamilyEmpty) is not run: each costs a process, about as much as the restore itself. In
 * this process's own namespace, or when no save is left to run, no shell is needed
 * (xtables-saves.linux.ts); otherwise the rest run in one shell in the namespace, where a
 * missing tool shows up as exit status 127.
 */
async function readAllSaves(executor: Executor): Promise<Saves> {
  const reads = (['legacy', 'nft'] as const).flatMap((v) =>
    ([4, 6] as const).map((f) => ({ tool: TOOL(v, f, 'save'), knownEmpty: v === 'legacy' ? legacyFamilyEmpty(executor, f) : nftFamilyEmpty(executor, f) })),
  );
  if (executor.realNamespace === '' || reads.every((r) => r.knownEmpty)) return readSavesDirectly(executor, reads);
  const script = reads
    .map(({ tool, knownEmpty }) => {
      const body = knownEmpty ? `echo "${MARK} rc 0"` : `${tool} -c 2>/dev/null; echo "${MARK} rc $?"`;
      return `echo '${MARK} ${tool}'; if command -v ${tool} >/dev/null 2>&1; then ${body}; else echo "${MARK} rc 127"; fi`;
    })
    .join('\n');
  const r = await executor.run(['sh', '-c', script]);
  const saves: Saves = new Map();
  const sections = r.stdout.split(`${MARK} `).slice(1);
  for (let i = 0; i + 1 < sections.length; i += 2) {
    const tool = sections[i]!.split('\n', 1)[0]!.trim();
    const rc = Number(sections[i + 1]!.replace(/^rc /, '').trim());
    saves.set(tool, rc === 0 ? sections[i]!.slice(sections[i]!.indexOf('\n') + 1) : undefined);
  }
  return saves;
}

/** True when a save shows any rule or user-defined chain. */
function holdsRules(save: string | undefined): boolean {
  return save !== undefined && /^(\[\d+:\d+\] )?-A |^:(?!(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) )/m.test(save);
}

export async function chooseIptables(executor: Executor, forced?: IptablesBinaryChoice): Promise<IptablesBinaries> {
  const saves = await readAllSaves(executor);
  const present = (v: IptablesVariant) => saves.get(TOOL(v, 4, 'save')) !== undefined;
  const snapshotOf = (v: IptablesVariant) =>
    new Map<IpFamily, string | undefined>([
      [4, saves.get(TOOL(v, 4, 'save'))],
      [6, saves.get(TOOL(v, 6, 'save'))],
    ]);
  if (forced) {
    const variant: IptablesVariant = forced === 'iptables-legacy' ? 'legacy' : 'nft';
    if (!present(variant)) {
      throw new MissingToolError(
        `--force-iptables-binary ${forced}: ${TOOL(variant, 4, 'save')} is missing or failed; install the Debian package "iptables" (and run as root)`,
      );
    }
    return iptablesBinaries(variant, snapshotOf(variant));
  }
  if (!present('nft') && !present('legacy')) {
    throw new MissingToolError(
      'no working iptables found (iptables-nft-save and iptables-legacy-save are missing or failed): install the Debian package "iptables" and run as root, or use --native-nftables',
    );
  }
  const legacyInUse = holdsRules(saves.get(TOOL('legacy', 4, 'save'))) || holdsRules(saves.get(TOOL('legacy', 6, 'save')));
  const variant: IptablesVariant = present('legacy') && (!present('nft') || legacyInUse) ? 'legacy' : 'nft';
  return iptablesBinaries(variant, snapshotOf(variant));
}
