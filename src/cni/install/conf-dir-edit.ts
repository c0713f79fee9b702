/**
 * Inserting interpose-cni into the conf dir's primary network configuration and taking it out
 * again so that the conf dir is byte-identical to before. The original file's bytes (and mode
 * and name: a `.conf` becomes a `.conflist`) are kept in `interpose-cni.original` next to it,
 * so uninstall restores them exactly instead of re-serialising JSON. Every write goes through
 * a temporary file and rename(2): a runtime reading the dir mid-write sees the old file or the
 * new one, never half of one.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileRefusedError, formatBytes, readBoundedBytes } from '../../config/bounded-file.js';
import { InterceptError } from '../../errors/intercept-error.js';
import {
  conflistNameFor,
  hasPlugin,
  holdsExactly,
  parseNetworkConf,
  primaryConfName,
  renderConflist,
  withPlugin,
  withoutPlugin,
  type PluginEntry,
} from './primary-conflist.js';

/** Not *.conf/*.conflist/*.json: a runtime must never take it for a network. */
export const ORIGINAL_FILE = 'interpose-cni.original';

/** What the primary was before we touched it, and what we wrote in its place. */
interface OriginalRecord {
  /** The file holding our entry now. */
  readonly file: string;
  /** The original's name (differs from `file` when a .conf became a .conflist). */
  readonly originalName: string;
  readonly originalBase64: string;
  readonly originalMode: number;
  /** sha256 of what we wrote: uninstall restores the original only over our own bytes. */
  readonly writtenSha256: string;
}

export type InsertOutcome = { readonly changed: false; readonly file: string } | { readonly changed: true; readonly file: string; readonly from?: string };

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Network configurations are a few hundred bytes; the conf dir is the host's, still not trusted to be sane. */
export const CONF_FILE_MAX_BYTES = 1 << 20;

/** A file of the conf dir, read bounded (a runaway or hostile file is refused, naming it). */
export function readConfFile(path: string): Buffer {
  try {
    return readBoundedBytes(path, CONF_FILE_MAX_BYTES);
  } catch (err) {
    const why = err instanceof FileRefusedError ? err.message : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);
    throw new InterceptError(`cannot read ${path}: ${why} (network configurations up to ${formatBytes(CONF_FILE_MAX_BYTES)} are read); nothing was changed`);
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => statSync(join(dir, n)).isFile());
  } catch (err) {
    throw new InterceptError(`cannot read the CNI conf dir ${dir} (--cni-conf-dir): ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The primary configuration's name, or undefined when the dir holds none (yet). */
export function primaryIn(dir: string): string | undefined {
  return primaryConfName(listDir(dir));
}

function writeAtomically(dir: string, name: string, bytes: Buffer, mode: number): void {
  const tmp = join(dir, `.interpose-cni-${process.pid}.tmp`);
  writeFileSync(tmp, bytes, { mode });
  renameSync(tmp, join(dir, name));
}

function readRecord(dir: string): OriginalRecord | undefined {
  const path = join(dir, ORIGINAL_FILE);
  if (!existsSync(path)) return undefined;
  const bytes = readConfFile(path);
  try {
    return JSON.parse(bytes.toString('utf8')) as OriginalRecord;
  } catch (err) {
    throw new InterceptError(`cannot read ${path}, interpose-cni's copy of the original network configuration: ${(err as Error).message}`);
  }
}

/**
 * Makes the primary configuration end with exactly `entry`. Idempotent: a primary that already
 * does is left alone (not even rewritten). Throws naming the file when the primary does not
 * parse, before anything is written.
 */
export function insertPlugin(dir: string, entry: PluginEntry): InsertOutcome | undefined {
  const primary = primaryIn(dir);
  if (primary === undefined) return undefined;
  const path = join(dir, primary);
  const bytes = readConfFile(path);
  const mode = statSync(path).mode & 0o7777;
  const { conflist, wasSinglePlugin } = parseNetworkConf(path, bytes);
  if (!wasSinglePlugin && holdsExactly(conflist, entry)) return { changed: false, file: primary };
  const target = wasSinglePlugin ? conflistNameFor(primary) : primary;
  const previous = readRecord(dir);
  // Our own .conflist from an earlier .conf may be replaced (another CNI rewrote the .conf);
  // anybody else's file may not.
  const ours = previous !== undefined && previous.file === target && existsSync(join(dir, target)) && sha256(readConfFile(join(dir, target))) === previous.writtenSha256;
  if (wasSinglePlugin && existsSync(join(dir, target)) && !ours) {
    throw new InterceptError(`cannot turn ${path} into ${join(dir, target)}: that file exists already; nothing was changed`);
  }
  // Another file became the primary (another CNI wrote one that sorts first): the one we
  // were in goes back to how it was, so the conf dir holds our entry in one place only.
  const moved = previous !== undefined && previous.file !== target && existsSync(join(dir, previous.file));
  if (moved) takeOut(dir, previous);
  const rendered = renderConflist(withPlugin(conflist, entry));
  // The primary without us is the new original: first install, or another CNI rewrote it.
  // With us in it already (our entry changed), the recorded original still stands.
  const record: OriginalRecord =
    !hasPlugin(conflist) || previous === undefined || moved
      ? { file: target, originalName: primary, originalBase64: bytes.toString('base64'), originalMode: mode, writtenSha256: sha256(rendered) }
      : { ...previous, file: target, writtenSha256: sha256(rendered) };
  // The record first: if we stop between the two writes, uninstall still knows the original.
  writeAtomically(dir, ORIGINAL_FILE, Buffer.from(`${JSON.stringify(record)}\n`), 0o600);
  writeAtomically(dir, target, rendered, mode);
  if (target !== primary) unlinkSync(path);
  return { changed: true, file: target, ...(target !== primary ? { from: primary } : {}) };
}

/**
 * Our entry out of the file `record` names: the original bytes back (under the original name)
 * where the file still holds exactly what we wrote; else only our entry removed from what is
 * there now. Returns what it did, for the log.
 */
function takeOut(dir: string, record: OriginalRecord): string {
  const path = join(dir, record.file);
  const bytes = readConfFile(path);
  if (sha256(bytes) === record.writtenSha256) {
    if (record.originalName !== record.file) unlinkSync(path);
    writeAtomically(dir, record.originalName, Buffer.from(record.originalBase64, 'base64'), record.originalMode);
    return `restored ${record.originalName} as it was before install`;
  }
  return removeEntry(dir, record.file, bytes);
}

function removeEntry(dir: string, file: string, bytes: Buffer): string {
  const path = join(dir, file);
  const { conflist, wasSinglePlugin } = parseNetworkConf(path, bytes);
  if (wasSinglePlugin || !hasPlugin(conflist)) return `${file} does not hold interpose-cni`;
  writeAtomically(dir, file, renderConflist(withoutPlugin(conflist)), statSync(path).mode & 0o7777);
  return `removed interpose-cni from ${file} (changed since install, so not restored byte for byte)`;
}

/** Takes our entry out of the conf dir (see takeOut); without a record, out of the primary. */
export function removePlugin(dir: string): string {
  listDir(dir);
  const record = readRecord(dir);
  let done = 'no network configuration held interpose-cni';
  if (record && existsSync(join(dir, record.file))) {
    done = takeOut(dir, record);
  } else {
    const primary = primaryIn(dir);
    if (primary !== undefined) done = removeEntry(dir, primary, readConfFile(join(dir, primary)));
  }
  if (record) unlinkSync(join(dir, ORIGINAL_FILE));
  return done;
}
