/**
 * Reads a configuration file the user named (`-x @FILE`, `proxy --config FILE`) without trusting
 * it: only a regular file, at most `maxBytes`, read in bounded chunks. `/dev/zero` never ends,
 * a FIFO blocks until someone writes, and a 200 MB file took over a minute and 3.6 GB to read
 * whole and split; all three are refused before any of their content is looked at.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

/** Why a file was refused; `reason` is a phrase to put after the path in a message. */
export class FileRefusedError extends Error {
  override name = 'FileRefusedError';
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** `16 MiB`, `512 KiB`: the limit as people say it. */
export function formatBytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KiB`;
  return `${n} bytes`;
}

/**
 * The file's text (UTF-8). Throws FileRefusedError for a file that is not regular or is larger
 * than `maxBytes` (also when it grows past the limit while being read, as /proc files and
 * files being written do: their stat size says nothing), and the fs error (with its `code`)
 * when it cannot be opened.
 */
export function readBoundedFile(path: string, maxBytes: number): string {
  return readBoundedBytes(path, maxBytes).toString('utf8');
}

/** readBoundedFile's bytes, for files that are not text or are hashed as they are (PEM, conf files). */
export function readBoundedBytes(path: string, maxBytes: number): Buffer {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new FileRefusedError(`not a regular file (${fileKind(stat)})`);
    const tooLarge = () => new FileRefusedError(`larger than ${formatBytes(maxBytes)}, the limit for this file`);
    if (stat.size > maxBytes) throw tooLarge();
    // One byte beyond the limit tells "exactly at the limit" from "more".
    const buffer = Buffer.alloc(Math.min(maxBytes + 1, Math.max(stat.size + 1, 64 * 1024)));
    let length = 0;
    let chunk = buffer;
    for (;;) {
      if (length === chunk.length) {
        if (length > maxBytes) throw tooLarge();
        const grown = Buffer.alloc(Math.min(maxBytes + 1, length * 2));
        chunk.copy(grown, 0, 0, length);
        chunk = grown;
      }
      const n = readSync(fd, chunk, length, chunk.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > maxBytes) throw tooLarge();
    return chunk.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

function fileKind(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  return 'not a file';
}
