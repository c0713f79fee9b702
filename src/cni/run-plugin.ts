/**
 * One plugin call, whoever received it: `{ env, stdin }` in, `{ exitCode, stdout }` out. The
 * Node plugin (main.ts: process.env and its stdin) and the node daemon (cni-server.ts: a
 * request the native shim forwarded over the socket) both call this, so ADD/DEL/CHECK answer
 * the same whichever path a runtime's call took. Never throws: every failure becomes the
 * spec's error result, also appended to the configuration's log_file.
 */
import { AttachmentStore } from './attachment-store.js';
import { CNI_ERROR, CniError } from './cni-error.js';
import { readCniEnvironment } from './cni-environment.js';
import { parsePluginConfig, versionOf } from './plugin-config.js';
import { PluginLog } from './plugin-log.js';
import { asCniError, runCommand, versionResult } from './plugin.js';

/** A network configuration is a few KiB; a prevResult with many IPs a few more. */
export const MAX_STDIN = 1 << 20;

export interface PluginCall {
  /** The CNI_* variables (other keys are ignored). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: string;
}

export interface PluginAnswer {
  readonly exitCode: number;
  /** The result or error JSON, newline-terminated; '' when the command prints nothing. */
  readonly stdout: string;
}

export async function runPlugin(call: PluginCall): Promise<PluginAnswer> {
  const { env, stdin } = call;
  let log = new PluginLog(undefined);
  let version = '1.1.0';
  try {
    if (stdin.length > MAX_STDIN) throw new CniError(CNI_ERROR.decodingFailure, `the network configuration on stdin is larger than ${MAX_STDIN} bytes`);
    try {
      const raw = JSON.parse(stdin) as { log_file?: unknown };
      version = versionOf(raw);
      // Even a configuration refused below gets its error into the log it names.
      if (typeof raw.log_file === 'string' && raw.log_file !== '') log = new PluginLog(raw.log_file, 'error');
    } catch {
      // parsePluginConfig says what is wrong with it.
    }
    if (env.CNI_COMMAND === 'VERSION') return { exitCode: 0, stdout: `${JSON.stringify(versionResult(stdin))}\n` };
    const conf = parsePluginConfig(stdin);
    log = new PluginLog(conf.logFile, conf.logLevel);
    // What the runtime passed, so a runtime's CNI_ARGS can be read from the log (podman's differ from kubelet's).
    log.debug(`${env.CNI_COMMAND ?? '?'} started (CNI_CONTAINERID=${env.CNI_CONTAINERID ?? ''} CNI_IFNAME=${env.CNI_IFNAME ?? ''} CNI_ARGS=${(env.CNI_ARGS ?? '').slice(0, 512)})`);
    const result = await runCommand(readCniEnvironment(env), conf, { store: new AttachmentStore(), log });
    return { exitCode: 0, stdout: result === undefined ? '' : `${JSON.stringify(result)}\n` };
  } catch (err) {
    const cniError = asCniError(err);
    log.error(`${env.CNI_COMMAND ?? '?'} failed (code ${cniError.code}): ${cniError.message}${cniError.details ? `\n${cniError.details}` : ''}`);
    return { exitCode: 1, stdout: `${JSON.stringify(cniError.toResult(version))}\n` };
  }
}
