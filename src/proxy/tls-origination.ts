/**
 * TLS origination (DestinationRule tls.mode SIMPLE / MUTUAL): the options of the TLS connection
 * to the upstream, and Envoy's "transport failure reason" for a connection that failed.
 * As Istio configures Envoy today: the SNI is `sni`, else the request's host (auto SNI); the
 * server certificate is verified against `caCertificates`, else the system store (Istio's
 * VERIFY_CERTIFICATE_AT_CLIENT), and must name one of `subjectAltNames`, else the SNI (auto SAN
 * validation); MUTUAL also presents the client certificate.
 */
import { existsSync, readFileSync } from 'node:fs';
import { checkServerIdentity, rootCertificates, type PeerCertificate } from 'node:tls';
import type { LoadedTls } from './destination-policy.js';

/** Where distributions keep the system CA bundle (Debian/Ubuntu, RHEL/Fedora, Alpine/macOS). */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

/**
 * The system's trusted CAs: the distribution bundle (what Envoy in Istio's proxy image reads),
 * else Node's built-in Mozilla roots. Read when a config with TLS origination is loaded.
 */
export function systemCaBundle(): string | string[] {
  const file = SYSTEM_BUNDLES.find((f) => existsSync(f));
  if (file) {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      // Unreadable as the proxy's uid: fall back to Node's roots.
    }
  }
  return [...rootCertificates];
}

/** The https.Agent-level options (shared by every connection of the cluster). */
export function agentTlsOptions(tls: LoadedTls, systemCa: () => string | string[]) {
  const ca = tls.ca ?? (tls.insecureSkipVerify ? undefined : systemCa());
  return {
    ...(ca ? { ca } : {}),
    ...(tls.mode === 'MUTUAL' ? { cert: tls.cert, key: tls.key } : {}),
    rejectUnauthorized: !tls.insecureSkipVerify,
  };
}

/** The per-request options: SNI and the name check. `host` is the request's host. */
export function requestTlsOptions(tls: LoadedTls, host: string) {
  const servername = tls.sni ?? host;
  return {
    servername,
    checkServerIdentity: (_name: string, cert: PeerCertificate): Error | undefined => {
      if (tls.insecureSkipVerify) return undefined;
      if (!tls.subjectAltNames) return checkServerIdentity(servername, cert);
      const sans = (cert.subjectaltname ?? '').split(/,\s*/).map((s) => s.replace(/^(DNS|URI|IP Address):/, ''));
      if (tls.subjectAltNames.some((want) => sans.includes(want))) return undefined;
      return Object.assign(new Error(`certificate SANs ${sans.join(', ') || '(none)'} match none of ${tls.subjectAltNames.join(', ')}`), {
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      });
    },
  };
}

/** OpenSSL's certificate verification failures, as Node reports them in `err.code`. */
const VERIFY_FAILURES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
]);

const VERIFY_FAILED = 'TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED';

/**
 * Envoy's %UPSTREAM_TRANSPORT_FAILURE_REASON% for a failed TLS connection (BoringSSL's error
 * text; OpenSSL alert reasons are written in BoringSSL's upper-case form), undefined when the
 * error is not about TLS.
 */
export function transportFailureReason(err: NodeJS.ErrnoException & { reason?: string }): string | undefined {
  const code = err.code ?? '';
  if (VERIFY_FAILURES.has(code)) return `${VERIFY_FAILED}:TLS_error_end`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `${VERIFY_FAILED}:verify cert failed: verify SAN list:TLS_error_end`;
  if (code.startsWith('ERR_SSL_')) {
    const reason = (err.reason ?? code.slice('ERR_SSL_'.length)).toUpperCase().replace(/[^A-Z0-9]+/g, '_');
    return `TLS_error:|SSL routines:OPENSSL_internal:${reason}:TLS_error_end`;
  }
  return undefined;
}
