/**
 * process.exit() that first lets stdout and stderr reach the OS. Node queues a write a pipe
 * cannot take at once (the pipe buffer is 64 KiB) and exit() drops that queue:
 * `interpose istio-iptables --dry-run -i <many CIDRs> | cat` printed 128 KiB of a 210 KiB
 * ruleset and exited 0.
 */
export async function flushedExit(code?: number): Promise<never> {
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}

/**
 * Resolves once everything written to `stream` so far is out, or the reader is gone (EPIPE
 * after `| head -1`: what was not read is not wanted, and the error is no crash of ours).
 */
export function drained(stream: NodeJS.WritableStream & { writableLength?: number }): Promise<void> {
  return new Promise((resolve) => {
    if (stream.writableLength === 0) {
      resolve();
      return;
    }
    stream.on('error', () => resolve());
    // Callbacks run in write order, so an empty write's says the earlier ones are done.
    stream.write('', () => resolve());
  });
}
