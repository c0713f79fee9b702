#!/usr/bin/env node
/**
 * `interpose-cni`: the executable a container runtime runs as a CNI plugin. Reads CNI_* from
 * the environment and the network configuration from stdin (bounded), prints the result or a
 * CNI error as JSON on stdout, and exits 0 or 1. Kept small: every pod creation waits for it.
 */
import { AttachmentStore } from './attachment-store.js';
import { CNI_ERROR, CniError } from './cni-error.js';
import { readCniEnvironment } from './cni-environment.js';
import { parsePluginConfig, versionOf } from './plugin-config.js';
import { PluginLog } from './plugin-log.js';
import { asCniError, runCommand, versionResult } from './plugin.js';

/** A network configuration is a few KiB; a prevResult with many IPs a few more. */
const MAX_STDIN = 1 << 20;

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
  let stdin = '';
  let log = new PluginLog(undefined);
  let version = '1.1.0';
  try {
    stdin = await readStdin(MAX_STDIN);
    try {
      const raw = JSON.parse(stdin) as { log_file?: unknown };
      version = versionOf(raw);
      // Even a configuration refused below gets its error into the log it names.
      if (typeof raw.log_file === 'string' && raw.log_file !== '') log = new PluginLog(raw.log_file, 'error');
    } catch {
      // parsePluginConfig says what is wrong with it.
    }
    if (process.env.CNI_COMMAND === 'VERSION') {
      process.stdout.write(`${JSON.stringify(versionResult(stdin))}\n`);
      return 0;
    }
    const conf = parsePluginConfig(stdin);
    log = new PluginLog(conf.logFile, conf.logLevel);
    // What the runtime passed, so a runtime's CNI_ARGS can be read from the log (podman's differ from kubelet's).
    log.debug(`${process.env.CNI_COMMAND ?? '?'} started (CNI_CONTAINERID=${process.env.CNI_CONTAINERID ?? ''} CNI_IFNAME=${process.env.CNI_IFNAME ?? ''} CNI_ARGS=${(process.env.CNI_ARGS ?? '').slice(0, 512)})`);
    const env = readCniEnvironment(process.env);
    const result = await runCommand(env, conf, { store: new AttachmentStore(), log });
    if (result !== undefined) process.stdout.write(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (err) {
    const cniError = asCniError(err);
    log.error(`${process.env.CNI_COMMAND ?? '?'} failed (code ${cniError.code}): ${cniError.message}${cniError.details ? `\n${cniError.details}` : ''}`);
    process.stdout.write(`${JSON.stringify(cniError.toResult(version))}\n`);
    return 1;
  }
}

// Exit as soon as the answer is out: a Kubernetes client's idle sockets must not hold the pod.
process.exit(await main());
