/**
 * A throwaway certificate authority and one server certificate per TLS stand-in, generated
 * with openssl at run time (EC P-256: fast, and nothing secret is ever committed).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommandFailedError, InterceptError } from '../../errors/index.js';
import { SystemExecutor, runChecked } from '../../kernel/executor.js';

export interface TestCa {
  caCert: string;
  /** Server key and certificate files by host name. */
  servers: Record<string, { cert: string; key: string }>;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await runChecked(new SystemExecutor(), ['openssl', ...args]);
  } catch (err) {
    if (err instanceof CommandFailedError && (err.cause as { code?: string } | undefined)?.code === 'ENOENT') {
      throw new InterceptError('openssl not found: install the "openssl" package (apt-get install openssl)');
    }
    throw new InterceptError(`openssl ${args[0]} failed: ${err instanceof CommandFailedError ? err.stderr : String(err)}`, { cause: err });
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Creates the CA and certificates for `hosts` in `dir`. */
export async function createTestCa(dir: string, hosts: readonly string[]): Promise<TestCa> {
  const at = (name: string) => join(dir, name);
  await openssl(
    ['req', '-x509', ...EC, '-keyout', at('ca.key'), '-out', at('ca.crt'), '-days', '2', '-subj', '/CN=interpose lab test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  );
  const servers: TestCa['servers'] = {};
  for (const host of hosts) {
    const ext = at(`${host}.ext`);
    writeFileSync(ext, `subjectAltName=DNS:${host}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`);
    await openssl(['req', ...EC, '-keyout', at(`${host}.key`), '-out', at(`${host}.csr`), '-subj', `/CN=${host}`]);
    // The serial file named, so it lands in `dir` whatever the working directory.
    await openssl(
      ['x509', '-req', '-in', at(`${host}.csr`), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAserial', at('ca.srl'), '-CAcreateserial',
        '-out', at(`${host}.crt`), '-days', '2', '-extfile', ext],
    );
    servers[host] = { cert: at(`${host}.crt`), key: at(`${host}.key`) };
  }
  return { caCert: at('ca.crt'), servers };
}
