#!/usr/bin/env node
/**
 * `interpose-cni` as a Node.js program: the package's bin, and what the native shim falls back
 * to when the node daemon's socket is absent (docs/cni.md). Reads CNI_* from the environment
 * and the network configuration from stdin (bounded), prints the result or a CNI error as JSON
 * on stdout, and exits 0 or 1 — run-plugin.ts does the work, as it does for the daemon.
 */
import { FileRefusedError } from '../config/bounded-file.js';
import { readBoundedStream } from '../config/bounded-stream.js';
import { CNI_ERROR, CniError } from './cni-error.js';
import { MAX_STDIN, runPlugin } from './run-plugin.js';

async function main(): Promise<number> {
  let stdin: string;
  try {
    stdin = await readBoundedStream(process.stdin, MAX_STDIN);
  } catch (err) {
    const e =
      err instanceof FileRefusedError
        ? new CniError(CNI_ERROR.decodingFailure, `the network configuration on stdin is larger than ${MAX_STDIN} bytes`)
        : new CniError(CNI_ERROR.ioFailure, `cannot read stdin: ${(err as Error).message}`);
    await answer(`${JSON.stringify(e.toResult('1.1.0'))}\n`);
    return 1;
  }
  const result = await runPlugin({ env: process.env, stdin });
  await answer(result.stdout);
  return result.exitCode;
}

/**
 * Writes the answer and waits until it is out: process.exit() drops what a pipe could not take
 * at once (64 KiB), and a result passing a large prevResult through is bigger than that.
 */
function answer(text: string): Promise<void> {
  return new Promise((resolve) => {
    // A runtime that closed our stdout (EPIPE) has stopped listening; nothing is left to say.
    process.stdout.on('error', () => resolve());
    process.stdout.write(text, () => resolve());
  });
}

// Exit as soon as the answer is out: a Kubernetes client's idle sockets must not hold the pod.
process.exit(await main());
