/**
 * interpose-cni's commands (CNI spec 1.0/1.1, chained plugin): ADD installs the pod's rules in
 * CNI_NETNS and passes prevResult through; DEL removes what ADD installed (idempotent, and fine
 * when the namespace is gone); CHECK compares the namespace with what ADD installed; STATUS
 * and GC where the configuration's version has them; VERSION. Returns what goes on stdout;
 * throws CniError for the error result.
 */
import { existsSync } from 'node:fs';
import { ValidationError } from '../errors/validation-error.js';
import { InterceptError } from '../errors/intercept-error.js';
import { shortened, valueText } from '../errors/value-text.js';
import { AttachmentStore, type Attachment } from './attachment-store.js';
import { CNI_ERROR, CniError } from './cni-error.js';
import type { CniEnvironment } from './cni-environment.js';
import type { PodRules } from './kernel-rules.js';
import { ipv6FromPrevResult } from './prev-result.js';
import type { PodReadOptions } from './pod-client.js';
import { SUPPORTED_VERSIONS, type PluginConfig } from './plugin-config.js';
import type { PluginLog } from './plugin-log.js';

// Loaded when used: a pod in an excluded namespace, VERSION and a DEL with nothing recorded
// never pay for the rule machinery or the Kubernetes client.
const kernel = () => import('./kernel-rules.js');
const podClient = () => import('./pod-client.js');
// The annotations-to-flags mapping (with its CIDR parsing) is needed only once a pod was read.
const interception = () => import('./pod-interception.js');

export interface PluginDeps {
  readonly store: AttachmentStore;
  readonly log: PluginLog;
  readonly podRead?: PodReadOptions;
}

/** VERSION: needs only the cniVersion of its input (which may be no configuration at all). */
export function versionResult(stdin: string): object {
  let version = '1.1.0';
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    if (typeof v === 'string' && v !== '') version = v;
  } catch {
    // The spec lets VERSION be called with an empty or partial config.
  }
  return { cniVersion: version, supportedVersions: [...SUPPORTED_VERSIONS] };
}

export async function runCommand(env: CniEnvironment, conf: PluginConfig, deps: PluginDeps): Promise<object | undefined> {
  const attachment: Attachment = { network: conf.name, containerId: env.containerId, ifname: env.ifname };
  const pod = env.pod ? `${env.pod.namespace}/${env.pod.name}` : undefined;
  const log = deps.log.withContext(`${env.command} ${pod ? `pod ${pod} ` : ''}container ${env.containerId.slice(0, 12)}`);
  try {
    switch (env.command) {
      case 'ADD':
        return await add(env, conf, attachment, deps, log);
      case 'DEL':
        await del(env, attachment, deps, log);
        return undefined;
      case 'CHECK':
        await check(env, attachment, deps, log);
        return undefined;
      case 'STATUS':
        requireVersion(conf, '1.1.0', 'STATUS');
        status(conf);
        return undefined;
      case 'GC':
        requireVersion(conf, '1.1.0', 'GC');
        await gc(conf, deps, log);
        return undefined;
      case 'VERSION':
        return versionResult(JSON.stringify({ cniVersion: conf.cniVersion }));
    }
  } catch (err) {
    throw asCniError(err);
  }
}

async function add(env: CniEnvironment, conf: PluginConfig, attachment: Attachment, deps: PluginDeps, log: PluginLog): Promise<object> {
  if (conf.prevResult === undefined) {
    throw new CniError(CNI_ERROR.invalidNetworkConfig, 'interpose-cni is a chained plugin: ADD got no prevResult; list it after the plugin that creates the interface');
  }
  // Passed through as ADD's own result: `null` or `42` would be printed as one, exit 0.
  const prev = conf.prevResult;
  if (typeof prev !== 'object' || prev === null || Array.isArray(prev)) {
    throw new CniError(CNI_ERROR.invalidNetworkConfig, `invalid value for "prevResult" in the interpose-cni configuration: ${shortened(valueText(prev))}: expected an object (the previous plugin's result)`);
  }
  const passThrough = prev;
  if (!env.pod) {
    log.info('CNI_ARGS names no Kubernetes pod; left alone');
    return passThrough;
  }
  // Decided before any API call, so these pods are created even while the API is down.
  if (conf.excludeNamespaces.includes(env.pod.namespace)) {
    log.info(`namespace ${env.pod.namespace} is in exclude_namespaces; left alone`);
    return passThrough;
  }
  if (!conf.kubeconfig) {
    throw new CniError(CNI_ERROR.invalidNetworkConfig, '"kubeconfig" is not set in the interpose-cni configuration; ADD needs it to read the pod');
  }
  // The rule machinery loads while the pod is read: most of the module loading overlaps the
  // API round trip instead of following it (a pod left alone just wastes the load).
  const kernelLoading = kernel();
  const interceptionLoading = interception();
  kernelLoading.catch(() => undefined);
  interceptionLoading.catch(() => undefined);
  const info = await (await podClient()).readPod(conf.kubeconfig, env.pod, deps.podRead);
  log.debug('pod read from the API');
  const decision = (await interceptionLoading).podInterception(info);
  if (!decision.intercept) {
    log.info(`${decision.reason}; left alone`);
    return passThrough;
  }
  log.debug(`installing: istio-iptables ${decision.argv.join(' ')}`);
  const ipv6 = ipv6FromPrevResult(conf.prevResult);
  const rules: PodRules = { argv: decision.argv, netns: env.netns, nativeNftables: conf.nativeNftables, ...(ipv6 !== undefined ? { ipv6 } : {}) };
  // Recorded first: a DEL after a failed or interrupted ADD still knows what to remove.
  const before = deps.store.read(attachment);
  deps.store.write({ ...attachment, rules, ...(env.pod ? { pod: `${env.pod.namespace}/${env.pod.name}` } : {}) });
  try {
    const r = await (await kernelLoading).installRules(rules);
    log.info(`rules ${r.action} (${r.backend}): istio-iptables ${decision.argv.join(' ')}`);
  } catch (err) {
    // The apply rolled back: the namespace holds what it held, so the record does too.
    if (before) deps.store.write(before);
    else deps.store.remove(attachment);
    throw err;
  }
  return passThrough;
}

async function del(env: CniEnvironment, attachment: Attachment, deps: PluginDeps, log: PluginLog): Promise<void> {
  const record = deps.store.read(attachment);
  if (!record) {
    log.debug('ADD installed nothing for this attachment; nothing to remove');
    return;
  }
  if (env.netns === '' || !existsSync(env.netns)) {
    log.info(`network namespace ${env.netns === '' ? '(none given)' : `${env.netns} is gone`}; its rules went with it`);
  } else {
    const removed = await (await kernel()).removeRules({ ...record.rules, netns: env.netns });
    log.info(`removed ${removed}`);
  }
  deps.store.remove(attachment);
}

async function check(env: CniEnvironment, attachment: Attachment, deps: PluginDeps, log: PluginLog): Promise<void> {
  const record = deps.store.read(attachment);
  if (!record) {
    log.debug('ADD installed nothing for this attachment; nothing to check');
    return;
  }
  if (!existsSync(env.netns)) throw new CniError(CNI_ERROR.unknownContainer, `network namespace ${env.netns} does not exist`);
  const differences = await (await kernel()).compareRules({ ...record.rules, netns: env.netns });
  if (differences.length) {
    throw new CniError(CNI_ERROR.rulesDiffer, `the namespace's rules differ from what ADD installed (${differences.length} differences)`, differences.join('\n'));
  }
  log.debug('rules match what ADD installed');
}

function status(conf: PluginConfig): void {
  if (conf.kubeconfig && !existsSync(conf.kubeconfig)) {
    throw new CniError(CNI_ERROR.pluginNotAvailable, `the kubeconfig ${shortened(conf.kubeconfig)} named by "kubeconfig" does not exist`);
  }
}

/** GC: records (and rules) of attachments the runtime no longer lists as valid. */
async function gc(conf: PluginConfig, deps: PluginDeps, log: PluginLog): Promise<void> {
  const raw = conf.runtimeConfig?.['cni.dev/valid-attachments'];
  if (raw === undefined) return;
  if (!Array.isArray(raw)) throw new CniError(CNI_ERROR.invalidNetworkConfig, 'runtimeConfig "cni.dev/valid-attachments" must be a list');
  // A malformed entry could stand for an attachment that is still alive: refuse rather than guess.
  const valid = new Set<string>();
  for (const a of raw as ({ containerID?: unknown; ifname?: unknown } | null)[]) {
    if (typeof a?.containerID !== 'string' || typeof a.ifname !== 'string') {
      throw new CniError(CNI_ERROR.invalidNetworkConfig, 'runtimeConfig "cni.dev/valid-attachments": every entry must be {"containerID": string, "ifname": string}');
    }
    valid.add(`${a.containerID}\0${a.ifname}`);
  }
  for (const record of deps.store.list(conf.name)) {
    if (valid.has(`${record.containerId}\0${record.ifname}`)) continue;
    if (existsSync(record.rules.netns)) await (await kernel()).removeRules(record.rules);
    deps.store.remove(record);
    log.info(`GC: removed the rules of container ${record.containerId.slice(0, 12)}`);
  }
}

function requireVersion(conf: PluginConfig, min: string, command: string): void {
  if (conf.cniVersion.localeCompare(min, undefined, { numeric: true }) < 0) {
    throw new CniError(CNI_ERROR.incompatibleVersion, `${command} needs cniVersion ${min} or later; the configuration says ${conf.cniVersion}`);
  }
}

/** Errors from below as CNI errors: bad annotation values, failed applies, bugs. */
export function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof ValidationError) return new CniError(CNI_ERROR.badAnnotation, err.message);
  if (err instanceof InterceptError) return new CniError(CNI_ERROR.rulesFailed, err.message);
  const e = err as Error;
  return new CniError(CNI_ERROR.rulesFailed, `internal error: ${e?.message ?? String(err)}`, e?.stack ?? '');
}

