/**
 * Recognises an HTTP/1.x request at the start of a stream and reads its Host header, from
 * bytes that are only peeked at (the HTTP machinery parses them again later).
 */

export type HttpHeadResult =
  | { kind: 'http'; method: string; host: string | undefined }
  | { kind: 'need-more' }
  | { kind: 'not-http' };

/** Largest request head we wait for before giving up on finding Host. */
export const MAX_REQUEST_HEAD = 16 * 1024;

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

/** Parses the start of a stream as an HTTP/1.x request head. */
export function parseRequestHead(buf: Buffer): HttpHeadResult {
  const text = buf.toString('latin1', 0, Math.min(buf.length, MAX_REQUEST_HEAD));
  const space = text.indexOf(' ');
  const methodPart = space === -1 ? text : text.slice(0, space);
  // Decide "not HTTP" as early as possible so other protocols are not delayed.
  if (!METHODS.some((m) => (space === -1 ? m.startsWith(methodPart) : m === methodPart))) return { kind: 'not-http' };
  const lineEnd = text.indexOf('\r\n');
  if (lineEnd === -1) return text.length >= MAX_REQUEST_HEAD ? { kind: 'not-http' } : { kind: 'need-more' };
  if (!/^[A-Z]+ \S+ HTTP\/1\.[01]$/.test(text.slice(0, lineEnd))) return { kind: 'not-http' };
  const headEnd = text.indexOf('\r\n\r\n');
  const headers = text.slice(lineEnd + 2, headEnd === -1 ? text.length : headEnd);
  const m = /(?:^|\r\n)host:[ \t]*([^\r\n]*)/i.exec(headers);
  if (m && (headEnd !== -1 || headers.indexOf('\r\n', m.index + 2) !== -1)) {
    return { kind: 'http', method: methodPart, host: stripPort(m[1]!.trim()) };
  }
  if (headEnd !== -1 || text.length >= MAX_REQUEST_HEAD) return { kind: 'http', method: methodPart, host: undefined };
  return { kind: 'need-more' };
}

/** "example.com:8080" → "example.com"; "[2001:db8::1]:80" → "2001:db8::1". */
export function stripPort(host: string): string {
  const h = host.toLowerCase();
  if (h.startsWith('[')) {
    const close = h.indexOf(']');
    return close === -1 ? h : h.slice(1, close);
  }
  const colon = h.lastIndexOf(':');
  return colon !== -1 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}
