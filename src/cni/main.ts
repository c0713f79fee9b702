#!/usr/bin/env node
/**
 * `interpose-cni` as a Node.js program: the package's bin, and what the native shim falls back
 * to when the node daemon's socket is absent (docs/cni.md). Reads CNI_* from the environment
 * and the network configuration from stdin (bounded), prints the result or a CNI error as JSON
 * on stdout, and exits 0 or 1 — run-plugin.ts does the work, as it does for the daemon.
 */
import { CNI_ERROR, CniError } from './cni-error.js';
import { MAX_STDIN, runPlugin } from './run-plugin.js';

async function readStdin(limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of process.stdin) {
    length += (chunk as Buffer).length;
    if (length > limit) throw new CniError(CNI_ERROR.decodingFailure, `the network configuration on stdin is larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<number> {
  let stdin: string;
  try {
    stdin = await readStdin(MAX_STDIN);
  } catch (err) {
    const e = err instanceof CniError ? err : new CniError(CNI_ERROR.ioFailure, `cannot read stdin: ${(err as Error).message}`);
    process.stdout.write(`${JSON.stringify(e.toResult('1.1.0'))}\n`);
    return 1;
  }
  const answer = await runPlugin({ env: process.env, stdin });
  process.stdout.write(answer.stdout);
  return answer.exitCode;
}

// Exit as soon as the answer is out: a Kubernetes client's idle sockets must not hold the pod.
process.exit(await main());
