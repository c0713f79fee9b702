/**
 * What ADD installed, per attachment (network name + container id + interface, the CNI key
 * of an attachment), kept on the node: DEL and CHECK must act on exactly what ADD did, and
 * they cannot ask the API (the pod may be gone, the API down). A pod ADD left alone has no
 * record, so DEL and CHECK leave it alone too. Files are written whole (temp + rename).
 */
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBoundedFile } from '../config/bounded-file.js';
import { shortened } from '../errors/value-text.js';
import { CNI_ERROR, CniError } from './cni-error.js';
import type { PodRules } from './kernel-rules.js';

/** Where records live unless $INTERPOSE_CNI_STATE_DIR says otherwise (tests, read-only /var). */
export const DEFAULT_STATE_DIR = '/var/lib/cni/interpose-cni';
export const STATE_DIR_ENV = 'INTERPOSE_CNI_STATE_DIR';

export interface Attachment {
  readonly network: string;
  readonly containerId: string;
  readonly ifname: string;
}

export interface AttachmentRecord extends Attachment {
  readonly rules: PodRules;
  readonly pod?: string;
}

export class AttachmentStore {
  constructor(readonly dir: string = process.env[STATE_DIR_ENV] || DEFAULT_STATE_DIR) {}

  private file(a: Attachment): string {
    // '@' is escaped by encodeURIComponent, so it separates the parts unambiguously.
    return join(this.dir, `${encodeURIComponent(a.network)}@${encodeURIComponent(a.containerId)}@${encodeURIComponent(a.ifname)}.json`);
  }

  read(a: Attachment): AttachmentRecord | undefined {
    let text: string;
    try {
      text = readBoundedFile(this.file(a), 64 * 1024);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new CniError(CNI_ERROR.ioFailure, `cannot read the record of what ADD installed, ${shortened(this.file(a))}: ${shortened((err as Error).message)}`);
    }
    try {
      return JSON.parse(text) as AttachmentRecord;
    } catch {
      throw new CniError(CNI_ERROR.ioFailure, `the record of what ADD installed, ${shortened(this.file(a))}, is not JSON; delete it after removing the pod's rules`);
    }
  }

  write(record: AttachmentRecord): void {
    const file = this.file(record);
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      writeFileSync(`${file}.tmp`, `${JSON.stringify(record)}\n`, { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      throw new CniError(CNI_ERROR.ioFailure, `cannot record what ADD installed in ${shortened(file)}: ${shortened((err as Error).message)}`);
    }
  }

  remove(a: Attachment): void {
    rmSync(this.file(a), { force: true });
  }

  /** Every record of `network` (GC). */
  list(network: string): AttachmentRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const prefix = `${encodeURIComponent(network)}@`;
    const out: AttachmentRecord[] = [];
    for (const n of names) {
      if (!n.startsWith(prefix) || !n.endsWith('.json')) continue;
      const [, id, ifname] = n.slice(0, -'.json'.length).split('@');
      const r = this.read({ network, containerId: decodeURIComponent(id ?? ''), ifname: decodeURIComponent(ifname ?? '') });
      if (r) out.push(r);
    }
    return out;
  }
}
