/**
 * DNS over TCP frames each message with a two-byte length (RFC 1035 §4.2.2). This reader
 * collects frames from a socket's chunks with a bound: a frame longer than `maxFrame` is an
 * error (the caller closes the connection), so a peer can make us hold at most one frame of
 * `maxFrame` bytes plus a chunk.
 */

export class FrameTooLargeError extends Error {
  override name = 'FrameTooLargeError';
  constructor(readonly length: number, readonly max: number) {
    super(`DNS/TCP message of ${length} bytes announced; at most ${max} accepted`);
  }
}

export class TcpFrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly maxFrame: number) {}

  /** Adds a chunk; returns every complete frame. Throws FrameTooLargeError on an oversized length. */
  push(chunk: Buffer): Buffer[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const frames: Buffer[] = [];
    while (this.buffered.length >= 2) {
      const length = this.buffered.readUInt16BE(0);
      if (length > this.maxFrame) throw new FrameTooLargeError(length, this.maxFrame);
      if (this.buffered.length < 2 + length) break;
      frames.push(this.buffered.subarray(2, 2 + length));
      this.buffered = this.buffered.subarray(2 + length);
    }
    return frames;
  }

  /** Bytes of an incomplete frame held now. */
  get pending(): number {
    return this.buffered.length;
  }
}

/** `message` with its two-byte length prefix. */
export function frame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + message.length);
  out.writeUInt16BE(message.length, 0);
  message.copy(out, 2);
  return out;
}
