/**
 * A throwaway certificate authority and one server certificate per TLS stand-in, generated
 * with openssl at run time (EC P-256: fast, and nothing secret is ever committed).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { InterceptError } from '../../errors/index.js';

export interface TestCa {
  caCert: string;
  /** Server key and certificate files by host name. */
  servers: Record<string, { cert: string; key: string }>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await execa('openssl', args, { cwd });
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new InterceptError('openssl not found: install the "openssl" package (apt-get install openssl)');
    throw new InterceptError(`openssl ${args[0]} failed: ${e.stderr ?? String(err)}`, { cause: err });
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Creates the CA and certificates for `hosts` in `dir`. */
export async function createTestCa(dir: string, hosts: readonly string[]): Promise<TestCa> {
  await openssl(
    ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=interpose lab test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
  const servers: TestCa['servers'] = {};
  for (const host of hosts) {
    const ext = join(dir, `${host}.ext`);
    writeFileSync(ext, `subjectAltName=DNS:${host}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`);
    await openssl(['req', ...EC, '-keyout', `${host}.key`, '-out', `${host}.csr`, '-subj', `/CN=${host}`], dir);
    await openssl(
      ['x509', '-req', '-in', `${host}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${host}.crt`,
        '-days', '2', '-extfile', ext],
      dir,
    );
    servers[host] = { cert: join(dir, `${host}.crt`), key: join(dir, `${host}.key`) };
  }
  return { caCert: join(dir, 'ca.crt'), servers };
}
