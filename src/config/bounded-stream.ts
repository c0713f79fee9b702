/**
 * Reads a stream the user controls (stdin) up to a limit. `cat /dev/zero | interpose …` never
 * ends and `yes | …` fills memory: past `maxBytes` the read stops and is refused, without
 * waiting for an end that may never come.
 */
import { FileRefusedError, formatBytes } from './bounded-file.js';

/** The stream's text (UTF-8); FileRefusedError once more than `maxBytes` arrived. */
export async function readBoundedStream(stream: AsyncIterable<Buffer | string>, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  // Leaving the loop by a throw ends the iteration, which destroys the stream.
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    length += bytes.length;
    if (length > maxBytes) throw new FileRefusedError(`larger than ${formatBytes(maxBytes)}, the limit for this input`);
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, length).toString('utf8');
}
