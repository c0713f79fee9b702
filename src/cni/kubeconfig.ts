/**
 * What the plugin needs from a kubeconfig to read one pod: the current context's server, CA,
 * and credentials (bearer token or client certificate). A kubeconfig is YAML or JSON; the one
 * `interpose cni install` writes is JSON, so JSON.parse reads it and the YAML parser is loaded
 * only for a hand-written one. Paths in it are relative to the file, as kubectl reads them.
 * Credential plugins (exec, auth-provider) and basic auth cannot run in a CNI call: they are
 * an error naming the field, not a silent anonymous read.
 */
import { dirname, isAbsolute, join } from 'node:path';
import { FileRefusedError, readBoundedBytes, readBoundedFile } from '../config/bounded-file.js';
import { shortened } from '../errors/value-text.js';
import { CNI_ERROR, CniError } from './cni-error.js';

/** A kubeconfig, and each certificate, key or token file it names, is read up to this size. */
const KUBECONFIG_MAX_BYTES = 1 << 20;

const readError = (err: unknown): string =>
  err instanceof FileRefusedError ? err.reason : ((err as NodeJS.ErrnoException).code ?? (err as Error).message);

/** How to reach the API server and who to be there. */
export interface ApiAccess {
  readonly server: string;
  readonly ca?: Buffer;
  readonly insecureSkipTlsVerify: boolean;
  readonly tlsServerName?: string;
  readonly token?: string;
  readonly clientCert?: Buffer;
  readonly clientKey?: Buffer;
}

type Obj = Record<string, unknown>;

export async function loadKubeconfig(file: string): Promise<ApiAccess> {
  const fail = (what: string) => new CniError(CNI_ERROR.invalidNetworkConfig, `the kubeconfig ${shortened(file)} named by "kubeconfig": ${what}`);
  let text: string;
  try {
    text = readBoundedFile(file, KUBECONFIG_MAX_BYTES);
  } catch (err) {
    throw fail(`cannot be read: ${readError(err)}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    try {
      doc = (await import('../config/yaml-input.js')).yamlDocument(text);
    } catch (err) {
      throw fail(`is neither JSON nor YAML: ${(err as Error).message}`);
    }
  }
  if (!isObj(doc)) throw fail('is not a kubeconfig (not a mapping)');
  const named = (list: string, name: unknown, key: string): Obj => {
    const entries = doc[list];
    const entry = Array.isArray(entries) ? entries.find((e) => isObj(e) && e.name === name) : undefined;
    if (!isObj(entry) || !isObj(entry[key])) throw fail(`has no ${list} entry named ${JSON.stringify(name)} (from current-context)`);
    return entry[key];
  };
  const context = named('contexts', doc['current-context'], 'context');
  const cluster = named('clusters', context.cluster, 'cluster');
  const user = context.user === undefined ? {} : named('users', context.user, 'user');

  const str = (o: Obj, key: string): string | undefined => {
    const v = o[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw fail(`"${key}" is not a string`);
    return v;
  };
  const base = dirname(file);
  const readRef = (o: Obj, dataKey: string, pathKey: string): Buffer | undefined => {
    const data = str(o, dataKey);
    if (data !== undefined) return Buffer.from(data, 'base64');
    const path = str(o, pathKey);
    if (path === undefined) return undefined;
    try {
      return readBoundedBytes(isAbsolute(path) ? path : join(base, path), KUBECONFIG_MAX_BYTES);
    } catch (err) {
      throw fail(`"${pathKey}" ${shortened(path)} cannot be read: ${readError(err)}`);
    }
  };

  const server = str(cluster, 'server');
  if (server === undefined || !/^https?:\/\//.test(server)) throw fail(`the cluster's "server" ${JSON.stringify(server ?? '')} is not an http(s) URL`);
  for (const key of ['exec', 'auth-provider', 'username', 'password']) {
    if (user[key] !== undefined) throw fail(`the user's "${key}" is not supported by interpose-cni; use a token or a client certificate`);
  }
  const tokenFile = str(user, 'tokenFile');
  let token = str(user, 'token');
  if (token === undefined && tokenFile !== undefined) token = readRef({ f: tokenFile }, '-', 'f')!.toString('utf8').trim();
  const ca = readRef(cluster, 'certificate-authority-data', 'certificate-authority');
  const clientCert = readRef(user, 'client-certificate-data', 'client-certificate');
  const clientKey = readRef(user, 'client-key-data', 'client-key');
  const tlsServerName = str(cluster, 'tls-server-name');
  return {
    server: server.replace(/\/+$/, ''),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    ...(ca ? { ca } : {}),
    ...(tlsServerName ? { tlsServerName } : {}),
    ...(token ? { token } : {}),
    ...(clientCert ? { clientCert } : {}),
    ...(clientKey ? { clientKey } : {}),
  };
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
