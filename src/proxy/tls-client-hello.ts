/**
 * Reads the server name (SNI) out of the first bytes of a TLS connection without decrypting
 * anything: TLS record header → handshake header → ClientHello → extensions → server_name
 * (RFC 8446 §4.1.2, RFC 6066 §3). Works on a prefix of the stream and says when it needs more.
 */

export type ClientHelloResult =
  | { kind: 'tls'; sni: string | undefined }
  | { kind: 'need-more' }
  | { kind: 'not-tls' };

/** Largest ClientHello we wait for; real ones are < 2 KiB, post-quantum ones ~ 1.8 KiB more. */
export const MAX_CLIENT_HELLO = 16 * 1024;

/** Parses the start of a stream. `not-tls` as soon as the first bytes rule TLS out. */
export function parseClientHello(buf: Buffer): ClientHelloResult {
  if (buf.length < 1) return { kind: 'need-more' };
  if (buf[0] !== 0x16) return { kind: 'not-tls' }; // handshake record
  if (buf.length < 2) return { kind: 'need-more' };
  if (buf[1] !== 0x03) return { kind: 'not-tls' }; // major version 3 (SSL3 … TLS1.3 records)
  // Reassemble handshake bytes across records: a ClientHello may span several records.
  const handshake: Buffer[] = [];
  let offset = 0;
  let have = 0;
  let needed = -1;
  while (true) {
    if (buf.length < offset + 5) return { kind: 'need-more' };
    if (buf[offset] !== 0x16) return { kind: 'not-tls' };
    const len = buf.readUInt16BE(offset + 3);
    if (buf.length < offset + 5 + len) {
      return offset + 5 + len > MAX_CLIENT_HELLO ? { kind: 'tls', sni: undefined } : { kind: 'need-more' };
    }
    handshake.push(buf.subarray(offset + 5, offset + 5 + len));
    have += len;
    offset += 5 + len;
    if (needed === -1 && have >= 4) {
      const hs = Buffer.concat(handshake);
      if (hs[0] !== 0x01) return { kind: 'not-tls' }; // not a ClientHello
      needed = 4 + hs.readUIntBE(1, 3);
    }
    if (needed !== -1 && have >= needed) break;
  }
  return { kind: 'tls', sni: serverNameFrom(Buffer.concat(handshake).subarray(4, needed)) };
}

/** Walks the ClientHello body to the server_name extension; undefined when absent or malformed. */
function serverNameFrom(body: Buffer): string | undefined {
  try {
    let p = 2 + 32; // client_version, random
    p += 1 + body[p]!; // session_id
    p += 2 + body.readUInt16BE(p); // cipher_suites
    p += 1 + body[p]!; // compression_methods
    if (p + 2 > body.length) return undefined; // no extensions
    const end = p + 2 + body.readUInt16BE(p);
    p += 2;
    while (p + 4 <= end) {
      const type = body.readUInt16BE(p);
      const len = body.readUInt16BE(p + 2);
      p += 4;
      if (type === 0x0000) {
        // server_name_list: list length, then (name_type, name length, name)
        let q = p + 2;
        const listEnd = p + 2 + body.readUInt16BE(p);
        while (q + 3 <= listEnd) {
          const nameType = body[q]!;
          const nameLen = body.readUInt16BE(q + 1);
          if (nameType === 0) return body.toString('ascii', q + 3, q + 3 + nameLen).toLowerCase();
          q += 3 + nameLen;
        }
        return undefined;
      }
      p += len;
    }
  } catch {
    // RangeError from a truncated or lying length field: treat as "no SNI".
  }
  return undefined;
}
