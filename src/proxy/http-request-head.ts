/**
 * Recognises an HTTP request at the start of a stream — an HTTP/1.x request head, or the
 * HTTP/2 connection preface of prior-knowledge h2c — and reads the authority that counts for
 * routing, from bytes that are only peeked at (the HTTP machinery parses them again later).
 */

export type HttpHeadResult =
  | { kind: 'http'; method: string; host: string | undefined }
  /** The HTTP/2 client connection preface (RFC 9113 §3.4): authorities come per stream. */
  | { kind: 'http2' }
  | { kind: 'need-more' }
  | { kind: 'not-http' };

/**
 * Largest request head the proxy accepts: Envoy's default max_request_headers_kb (60 KiB).
 * Sniffing waits this long for the Host header; the HTTP parser answers 431 beyond it.
 */
export const MAX_REQUEST_HEAD = 60 * 1024;

/** What a prior-knowledge HTTP/2 client sends first. */
export const HTTP2_PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];

/** Parses the start of a stream as an HTTP/1.x request head or the HTTP/2 preface. */
export function parseRequestHead(buf: Buffer): HttpHeadResult {
  const text = buf.toString('latin1', 0, Math.min(buf.length, MAX_REQUEST_HEAD));
  if (text.startsWith('P') && HTTP2_PREFACE.startsWith(text.slice(0, HTTP2_PREFACE.length))) {
    return text.length >= HTTP2_PREFACE.length ? { kind: 'http2' } : { kind: 'need-more' };
  }
  const space = text.indexOf(' ');
  const methodPart = space === -1 ? text : text.slice(0, space);
  // Decide "not HTTP" as early as possible so other protocols are not delayed.
  if (!METHODS.some((m) => (space === -1 ? m.startsWith(methodPart) : m === methodPart))) return { kind: 'not-http' };
  const lineEnd = text.indexOf('\r\n');
  if (lineEnd === -1) return text.length >= MAX_REQUEST_HEAD ? { kind: 'not-http' } : { kind: 'need-more' };
  const requestLine = /^[A-Z]+ (\S+) HTTP\/1\.[01]$/.exec(text.slice(0, lineEnd));
  if (!requestLine) return { kind: 'not-http' };
  // RFC 9112 §3.2.2: an absolute-form target's authority replaces Host.
  const fromUri = absoluteFormAuthority(requestLine[1]!);
  if (fromUri !== undefined) return { kind: 'http', method: methodPart, host: stripPort(fromUri) };
  const headEnd = text.indexOf('\r\n\r\n');
  const headers = text.slice(lineEnd + 2, headEnd === -1 ? text.length : headEnd);
  const m = /(?:^|\r\n)host:[ \t]*([^\r\n]*)/i.exec(headers);
  if (m && (headEnd !== -1 || headers.indexOf('\r\n', m.index + 2) !== -1)) {
    return { kind: 'http', method: methodPart, host: stripPort(m[1]!.trim()) };
  }
  if (headEnd !== -1 || text.length >= MAX_REQUEST_HEAD) return { kind: 'http', method: methodPart, host: undefined };
  return { kind: 'need-more' };
}

/**
 * The authority of an absolute-form request target ("http://a.example:8080/x" → "a.example:8080"),
 * or undefined for origin form ("/x"), asterisk form and authority form (CONNECT's "host:port").
 */
export function absoluteFormAuthority(target: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(target);
  if (!m) return undefined;
  // Userinfo ("user@host") is not part of the authority Envoy routes on.
  const at = m[1]!.lastIndexOf('@');
  return at === -1 ? m[1]! : m[1]!.slice(at + 1);
}

/** The origin form of a request target: "http://a.example/x?q" → "/x?q"; origin form unchanged. */
export function originForm(target: string): string {
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(target);
  if (!m) return target;
  const rest = target.slice(m[0].length);
  return rest.startsWith('/') ? rest : `/${rest}`;
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
