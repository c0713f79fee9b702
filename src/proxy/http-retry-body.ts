/**
 * A request body that can be sent again on a retry. Envoy's router keeps a copy of the body
 * while it streams it upstream, up to the request buffer limit; a body larger than that is
 * still forwarded, but the request is no longer retried ("retry_or_shadow_abandoned"). Here
 * the chunks are kept up to REPLAY_LIMIT_BYTES, streamed to the current attempt as they
 * arrive, and written again in full to the next attempt. Between attempts the source is
 * paused, so nothing arrives while no attempt can take it.
 */
import type { Readable } from 'node:stream';

/** Envoy's default per_connection_buffer_limit_bytes (1 MiB), which bounds its retry buffer. */
export const REPLAY_LIMIT_BYTES = 1024 * 1024;

/** Where a try's body goes: a ClientRequest, a Writable, or a look-alike with these parts. */
export interface BodySink {
  readonly destroyed: boolean;
  write(chunk: Buffer): boolean;
  end(): unknown;
  once(event: 'drain', listener: () => void): unknown;
}

export class ReplayableBody {
  private chunks: Buffer[] = [];
  private size = 0;
  private ended = false;
  private target: BodySink | undefined;
  private complete: (() => void) | undefined;
  /** False once the body outgrew the limit: it cannot be sent again. */
  replayable = true;
  /** Called once when the body outgrows the limit (Envoy counts retry_or_shadow_abandoned then). */
  onOverflow: (() => void) | undefined;

  constructor(
    private readonly source: Readable,
    /** Each chunk as it arrives (byte counting for the log and metrics). */
    onChunk: (bytes: number) => void,
    private readonly limit = REPLAY_LIMIT_BYTES,
    /** The request says it has no body: sendTo() ends the upstream request at once, so its head goes out in one write this turn. */
    empty = false,
  ) {
    this.ended = empty;
    source.on('data', (chunk: Buffer) => {
      onChunk(chunk.length);
      if (this.replayable) {
        this.size += chunk.length;
        if (this.size > this.limit) {
          this.replayable = false;
          this.chunks = [];
          this.onOverflow?.();
        } else {
          this.chunks.push(chunk);
        }
      }
      const target = this.target;
      if (target && !target.destroyed && !target.write(chunk)) {
        source.pause();
        target.once('drain', () => {
          if (this.target === target) source.resume();
        });
      }
    });
    source.once('end', () => {
      if (this.ended) return;
      this.ended = true;
      if (this.target && !this.target.destroyed) this.target.end();
      this.complete?.();
    });
  }

  /**
   * Calls `cb` once the whole body has arrived, at once if it has: Envoy's route and per-try
   * timeouts start from the end of the downstream request.
   */
  whenComplete(cb: () => void): void {
    if (this.ended) cb();
    else this.complete = cb;
  }

  /** Sends the body so far to `target` and what follows as it arrives, ending it with the source. */
  sendTo(target: BodySink): void {
    this.target = target;
    for (const c of this.chunks) target.write(c);
    if (this.ended) target.end();
    else this.source.resume();
  }

  /**
   * No attempt follows (an answer is being relayed): what was kept is let go and nothing more
   * is kept, as Envoy stops buffering once it has no retry left to make.
   */
  release(): void {
    this.replayable = false;
    this.chunks = [];
  }

  /** The current attempt is over: hold the source until the next one. */
  detach(): void {
    this.target = undefined;
    if (!this.ended) this.source.pause();
  }
}
