/**
 * What interpose put into shared built-in chains, remembered per network namespace.
 *
 * ISTIO_* chains and jumps to them are recognisably ours, but a rule such as
 * `-A PREROUTING -i eth1 -j RETURN` (from `-k eth1`) is not: without a record, a later run
 * with different flags could neither replace it (--reconcile) nor remove it (--cleanup-only).
 * The record lives in /run/interpose ($INTERPOSE_STATE_DIR overrides), keyed by the
 * namespace's inode: /run and network namespaces both end with the boot, and records of
 * namespaces deleted since are pruned on every write. The kernel hands a deleted namespace's
 * inode to the next one, so a record also holds the namespace's cookie (unique for the boot),
 * and a record whose cookie is not the namespace's is a dead namespace's: it is ignored. Where
 * no record exists (another container ran the install), the flags given decide, as in
 * istio-init.
 *
 * The record is also the intent log of a transaction: before the first restore, a run writes
 * `pending` (what it is about to do, and what of ours each family held before); after the
 * last step, it writes the record without it. A record still pending is a run that was
 * killed (or is running): the next run undoes it from `previous`, verify reports it. Writes
 * go to a temporary file renamed over the record, so a kill never leaves half a record.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addonLoads, namespaceCookie } from '../native.js';
import type { IpFamily } from '../net/cidr.js';
import type { TableName } from '../rules/ir.js';
import type { OwnedSnapshot, OwnedState } from './iptables-plan.js';

/** Built-in chain → rule specs, per table, per family. */
export type BuiltinRecord = Map<IpFamily, Map<TableName, Map<string, string[]>>>;


/** A transaction that wrote its intent: what the next run undoes if it never finished. */
export interface PendingTransaction {
  readonly action: 'apply' | 'cleanup';
  readonly pid: number;
  readonly started: string;
  /** Per family ("4", "6"): what of ours it held before — what an undo restores. */
  readonly previous: Record<string, OwnedSnapshot>;
  /** Per family: the built-in-chain rules the transaction adds (ours while undoing). */
  readonly adds: Record<string, Record<string, Record<string, string[]>>>;
  /** Per family: how many restore lines the transaction writes (for a person reading it). */
  readonly steps: Record<string, number>;
  /** The record before the transaction, restored with the rules. */
  readonly before: { families: RecordFile['families']; passthroughAddress?: boolean };
}

/** What the record says about a namespace. */
export interface OwnershipRecord {
  readonly builtin: BuiltinRecord;
  /** interpose added ::6/128 to lo (it was not there before), so a cleanup removes it. */
  readonly passthroughAddress?: boolean;
  readonly pending?: PendingTransaction;
}

interface RecordFile {
  version: 1;
  /** The namespace path and inode the record was written for (for a person reading it). */
  netns?: string;
  inode?: number;
  /** The namespace's cookie (decimal), where the kernel and the addon can tell it. */
  cookie?: string;
  families: Record<string, Record<string, Record<string, string[]>>>;
  passthroughAddress?: boolean;
  pending?: PendingTransaction;
}

/** The built-in rules of a record file's `families`, as a BuiltinRecord. */
export function builtinFromJson(families: RecordFile['families']): BuiltinRecord {
  const out: BuiltinRecord = new Map();
  for (const [family, tables] of Object.entries(families)) {
    const t = new Map<TableName, Map<string, string[]>>();
    for (const [table, chains] of Object.entries(tables)) t.set(table as TableName, new Map(Object.entries(chains)));
    out.set(Number(family) as IpFamily, t);
  }
  return out;
}

/** A BuiltinRecord as a record file's `families`. */
export function builtinToJson(record: BuiltinRecord): RecordFile['families'] {
  const families: RecordFile['families'] = {};
  for (const [family, tables] of record) {
    families[String(family)] = Object.fromEntries([...tables].map(([table, chains]) => [table, Object.fromEntries(chains)]));
  }
  return families;
}

export const EMPTY_RECORD: OwnershipRecord = { builtin: new Map() };

/** Where records live: /run/interpose, or $INTERPOSE_STATE_DIR (tests point it elsewhere). */
export function defaultStateDir(): string {
  return process.env.INTERPOSE_STATE_DIR || '/run/interpose';
}

export interface OwnershipStore {
  load(): OwnershipRecord;
  save(record: OwnershipRecord): void;
  clear(): void;
}

/** The file-backed store for one namespace (undefined = the current one). */
export class FileOwnershipStore implements OwnershipStore {
  private readonly file: string;
  private readonly nsPath: string;
  private readonly inode: number;
  private readonly cookie: string | undefined;

  /** @param cookieOf the namespace's cookie (tests stand in for the kernel). */
  constructor(
    networkNamespace: string | undefined,
    private readonly dir = defaultStateDir(),
    cookieOf: (nsPath: string) => string | undefined = readCookie,
  ) {
    this.nsPath =
      networkNamespace === undefined
        ? '/proc/self/ns/net'
        : networkNamespace.startsWith('/')
          ? networkNamespace
          : `/run/netns/${networkNamespace}`;
    this.inode = statSync(this.nsPath).ino;
    this.file = join(dir, `iptables-netns-${this.inode}.json`);
    this.cookie = cookieOf(this.nsPath);
  }

  load(): OwnershipRecord {
    let parsed: RecordFile;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8')) as RecordFile;
    } catch {
      return EMPTY_RECORD;
    }
    if (parsed.version !== 1) return EMPTY_RECORD;
    // Written for an earlier namespace that had this inode: none of it is ours here.
    if (parsed.cookie !== undefined && this.cookie !== undefined && parsed.cookie !== this.cookie) return EMPTY_RECORD;
    return {
      builtin: builtinFromJson(parsed.families ?? {}),
      ...(parsed.passthroughAddress ? { passthroughAddress: true } : {}),
      ...(parsed.pending ? { pending: parsed.pending } : {}),
    };
  }

  save(record: OwnershipRecord): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file: RecordFile = {
      version: 1,
      netns: this.nsPath,
      inode: this.inode,
      ...(this.cookie ? { cookie: this.cookie } : {}),
      families: builtinToJson(record.builtin),
      ...(record.passthroughAddress ? { passthroughAddress: true } : {}),
      ...(record.pending ? { pending: record.pending } : {}),
    };
    // Renamed over the record: a kill mid-write leaves the old record or the new one.
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(file));
    renameSync(tmp, this.file);
    this.pruneGone();
  }

  /**
   * Deletes records of namespaces that no longer exist (deleted with `ip netns del`, or a
   * process's namespace that ended), so the directory does not grow with every pod or test.
   * A namespace is alive while a process is in it or a bind mount (/run/netns) holds it.
   */
  private pruneGone(): void {
    const filesOf = new Map<number, string[]>();
    for (const name of readdirSync(this.dir)) {
      const m = /^iptables-netns-(\d+)\.(?:json|lock)$/.exec(name);
      if (m) filesOf.set(Number(m[1]), [...(filesOf.get(Number(m[1])) ?? []), name]);
    }
    const ownInode = this.nsPath === '/proc/self/ns/net' ? this.inode : undefined;
    for (const inode of goneNamespaces(new Set(filesOf.keys()), ownInode)) {
      for (const name of filesOf.get(inode)!) rmSync(join(this.dir, name), { force: true });
    }
  }

  clear(): void {
    rmSync(this.file, { force: true });
  }
}

/** The cookie of the namespace at `nsPath`, or undefined where the addon or the kernel cannot tell. */
function readCookie(nsPath: string): string | undefined {
  if (!addonLoads()) return undefined;
  return namespaceCookie(nsPath === '/proc/self/ns/net' ? '' : nsPath)?.toString();
}

/** A store that remembers nothing (dry runs, tests of the flag-only behaviour). */
export const NO_RECORD: OwnershipStore = { load: () => EMPTY_RECORD, save: () => undefined, clear: () => undefined };

/** The built-in-chain part of an owned state, as a record entry. */
export function builtinOf(state: OwnedState): Map<TableName, Map<string, string[]>> {
  const out = new Map<TableName, Map<string, string[]>>();
  for (const [table, t] of state) if (t.builtin.size > 0) out.set(table, new Map(t.builtin));
  return out;
}

/** `known` plus the recorded built-in rules: what counts as ours in built-in chains. */
export function withRecorded(known: OwnedState, recorded: Map<TableName, Map<string, string[]>> | undefined): OwnedState {
  if (!recorded) return known;
  const out: OwnedState = new Map();
  const tables = new Set<TableName>([...known.keys(), ...recorded.keys()]);
  for (const table of tables) {
    const k = known.get(table);
    const builtin = new Map<string, string[]>(k?.builtin ?? []);
    for (const [chain, specs] of recorded.get(table) ?? []) {
      builtin.set(chain, [...new Set([...(builtin.get(chain) ?? []), ...specs])]);
    }
    out.set(table, { chains: k?.chains ?? new Map(), builtin });
  }
  return out;
}

/**
 * Those of `inodes` that no process is in and no /run/netns name holds. `ownInode` is this
 * process's namespace, alive by definition. The answer is the same as comparing against every
 * live namespace, but stops looking once every inode in question is found alive: in an init
 * container the record directory holds only its own namespace's record, and walking all of
 * /proc for it is start-up every pod waits for (bench/startup).
 */
function goneNamespaces(inodes: Set<number>, ownInode: number | undefined): Set<number> {
  const unseen = new Set(inodes);
  if (ownInode !== undefined) unseen.delete(ownInode);
  const see = (path: string) => {
    try {
      unseen.delete(statSync(path).ino);
    } catch {
      // the process exited or the name went away meanwhile
    }
  };
  if (unseen.size > 0 && existsSync('/run/netns')) for (const name of readdirSync('/run/netns')) see(`/run/netns/${name}`);
  if (unseen.size === 0) return unseen;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    see(`/proc/${pid}/ns/net`);
    if (unseen.size === 0) break;
  }
  return unseen;
}
