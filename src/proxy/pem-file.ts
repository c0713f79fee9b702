/**
 * A certificate or key file an Istio resource names (DestinationRule tls.caCertificates, a
 * Gateway's credentialName …), read bounded: /dev/zero never ends and a FIFO blocks until
 * someone writes, and either stalled the proxy's config load (or reload) for good.
 */
import { isAbsolute, join } from 'node:path';
import { FileRefusedError, formatBytes, readBoundedBytes } from '../config/bounded-file.js';
import { ValidationError } from '../errors/index.js';

/** A PEM bundle of many CA certificates is a few hundred KiB. */
export const PEM_MAX_BYTES = 1 << 20;

/**
 * The file's bytes; `file` relative to `baseDir` (the --config file's directory) unless
 * absolute. A ValidationError naming `field` when it cannot be read or is refused.
 */
export function readPemFile(field: string, file: string, baseDir: string | undefined): Buffer {
  const path = isAbsolute(file) || !baseDir ? file : join(baseDir, file);
  try {
    return readBoundedBytes(path, PEM_MAX_BYTES);
  } catch (err) {
    const reason = err instanceof FileRefusedError ? err.reason : ((err as NodeJS.ErrnoException).code ?? String(err));
    throw new ValidationError(field, file, `a readable PEM file (${reason}${path !== file ? `, read as ${path}` : ''}; at most ${formatBytes(PEM_MAX_BYTES)})`);
  }
}
