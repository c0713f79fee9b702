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

/** Resolves once everything written to `stream` so far is out (or failed, e.g. EPIPE). */
export function drained(stream: NodeJS.WritableStream & { writableLength?: number }): Promise<void> {
  // Callbacks run in write order, so an empty write's says the earlier ones are done.
  return new Promise((resolve) => (stream.writableLength === 0 ? resolve() : stream.write('', () => resolve())));
}
