/**
 * Byte relay between a downstream and an upstream socket: half-close in both directions
 * (a FIN is forwarded as a FIN, the other direction keeps flowing), RST forwarded as RST,
 * backpressure as pipe() has it (a slow reader pauses the writer; nothing buffers without bound),
 * and an idle timeout over both directions. Errors stay on this pair of sockets.
 */
import type { Socket } from 'node:net';

export interface RelayResult {
  /** Bytes read from the downstream (client) — Envoy's BYTES_RECEIVED. */
  bytesReceived: number;
  /** Bytes written to the downstream — Envoy's BYTES_SENT. */
  bytesSent: number;
  /** Envoy response flag: "-", "UC" (upstream reset), "DC" (downstream reset), "SI" (idle timeout). */
  flag: string;
}

export interface RelayOptions {
  idleTimeoutMs: number;
  /**
   * Bytes sniffing already read from downstream. Counted as received either way; forwarded
   * from here only when `downstreamEnded` (otherwise they were unshifted and flow again).
   */
  head?: Buffer;
  /** The downstream already half-closed (its FIN came during sniffing). */
  downstreamEnded?: boolean;
}

function isReset(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ECONNRESET' || err.code === 'EPIPE';
}

/** Relays until both sockets are closed; resolves with byte counts and how it ended. */
export function relay(down: Socket, up: Socket, options: RelayOptions): Promise<RelayResult> {
  return new Promise((resolve) => {
    let flag = '-';
    let closed = 0;
    // bytesRead counts the sniffed bytes once, when they were first read.
    const downRead0 = down.bytesRead - (options.head?.length ?? 0);
    const downWritten0 = down.bytesWritten;

    const onClose = () => {
      if (++closed < 2) return;
      resolve({
        bytesReceived: down.bytesRead - downRead0,
        bytesSent: down.bytesWritten - downWritten0,
        flag,
      });
    };
    down.once('close', onClose);
    up.once('close', onClose);
    // One side gone (destroyed, or finished both ways) ends the other once its queued bytes
    // are written: pipe() alone would leave it open forever after a destroy().
    const finishOther = (other: Socket) => () => {
      if (!other.destroyed) (other as Socket & { destroySoon(): void }).destroySoon();
    };
    down.once('close', finishOther(up));
    up.once('close', finishOther(down));

    // An RST on one side becomes an RST on the other (resetAndDestroy sets SO_LINGER 0).
    down.on('error', (err: NodeJS.ErrnoException) => {
      if (flag === '-') flag = 'DC';
      if (isReset(err)) up.resetAndDestroy();
      else up.destroy();
    });
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (flag === '-') flag = 'UC';
      if (isReset(err)) down.resetAndDestroy();
      else down.destroy();
    });

    // Node's socket timeout restarts on reads and writes of that socket; the downstream
    // socket sees both directions, so one timer covers the connection's idleness.
    if (options.idleTimeoutMs > 0) {
      down.setTimeout(options.idleTimeoutMs, () => {
        if (flag === '-') flag = 'SI';
        down.destroy();
        up.destroy();
      });
    }

    down.setNoDelay(true);
    up.setNoDelay(true);
    if (options.downstreamEnded) {
      if (options.head && options.head.length > 0) up.write(options.head);
      up.end();
    } else {
      forward(down, up);
    }
    forward(up, down);
    down.resume();
  });
}

/**
 * What `src.pipe(dst)` does for a socket pair, without pipe()'s per-call bookkeeping (about ten
 * listeners added and removed per direction): write each chunk, pause on backpressure until
 * 'drain', forward the FIN, and stop reading once `dst` is gone (as pipe's unpipe does, so
 * unread bytes still make close() an RST).
 * When `src` ends after `dst` has already delivered its own FIN to us and nothing is queued,
 * the pair is done both ways: close() sends the same FIN as shutdown() would, and saves the
 * shutdown request and its callbacks (strace: 2 → 1 shutdown per short connection).
 * Why: the proxy is CPU-bound on one core in bench:proxy's connection-rate run; this cut its
 * CPU per connection from a median of 276 to 256 µs (5 paired rounds, 32 concurrent short
 * exchanges; HAProxy ~82 µs in the same rounds) and raised the rate ~8%.
 */
function forward(src: Socket, dst: Socket): void {
  let waiting = false;
  const onDrain = () => {
    waiting = false;
    src.resume();
  };
  const onData = (chunk: Buffer) => {
    if (!dst.write(chunk) && !waiting && !dst.destroyed) {
      waiting = true;
      src.pause();
      dst.once('drain', onDrain);
    }
  };
  src.on('data', onData);
  src.once('end', () => {
    if (dst.readableEnded && dst.writableLength === 0 && !dst.destroyed) dst.destroy();
    else dst.end();
  });
  dst.once('close', () => {
    src.off('data', onData);
    src.pause();
  });
}
