/**
 * The world's servers, run as a child process inside the world namespace (a socket belongs to
 * the namespace of the process that opens it). Serves an httpbin.org stand-in over HTTP and a
 * www.google.com stand-in over TLS; prints "ready" once every listener is bound. Uses only
 * Node built-ins so it starts fast. Argument: one JSON object (StandInConfig).
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';

export interface StandInConfig {
  httpbin: { addresses: string[]; port: number };
  tls: { addresses: string[]; port: number; host: string; cert: string; key: string };
}

// A small teapot of our own for /status/418, in the spirit of httpbin's.
const TEAPOT = [
  '',
  '    -=[ teapot ]=-',
  '',
  '       _...._',
  '     .\'  _ _ `.',
  '    | ."` ^ `". _,',
  '    \\_;`"---"`|//',
  '      |       ;/',
  '      \\_     _/',
  '        `"""`',
  '',
].join('\n');

/** "x-envoy-attempt-count" → "X-Envoy-Attempt-Count", as httpbin prints header names. */
function canonical(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < req.rawHeaders.length; i += 2) out[canonical(req.rawHeaders[i]!.toLowerCase())] = req.rawHeaders[i + 1]!;
  return out;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), server: 'httpbin-stand-in' });
  res.end(text);
}

function httpbin(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://httpbin.org');
  const origin = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  const path = url.pathname;
  // Drain any body so keep-alive works.
  req.resume();
  if (path === '/headers') return json(res, 200, { headers: headersOf(req) });
  if (path === '/ip') return json(res, 200, { origin });
  if (path === '/get') return json(res, 200, { args: Object.fromEntries(url.searchParams), headers: headersOf(req), origin, url: url.href });
  const status = /^\/status\/(\d{3})$/.exec(path);
  if (status) {
    const code = Number(status[1]);
    if (code === 418) {
      res.writeHead(418, { 'x-more-info': 'http://tools.ietf.org/html/rfc2324', 'content-length': Buffer.byteLength(TEAPOT), server: 'httpbin-stand-in' });
      res.end(TEAPOT);
      return;
    }
    res.writeHead(code, { 'content-length': '0', server: 'httpbin-stand-in' });
    res.end();
    return;
  }
  const delay = /^\/delay\/(\d+(?:\.\d+)?)$/.exec(path);
  if (delay) {
    const seconds = Math.min(Number(delay[1]), 10);
    const timer = setTimeout(() => json(res, 200, { args: {}, headers: headersOf(req), origin, url: url.href }), seconds * 1000);
    res.once('close', () => clearTimeout(timer));
    return;
  }
  json(res, 404, { error: 'not found', path });
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as StandInConfig;
  const listening: Promise<void>[] = [];
  for (const address of config.httpbin.addresses) {
    const server = createHttpServer(httpbin);
    listening.push(new Promise((resolve, reject) => server.once('error', reject).listen(config.httpbin.port, address, () => resolve())));
  }
  const tlsOptions = { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
  for (const address of config.tls.addresses) {
    const server = createHttpsServer(tlsOptions, (req, res) => {
      req.resume();
      const body = `<!doctype html><html><head><title>${config.tls.host}</title></head><body>stand-in for ${config.tls.host}</body></html>\n`;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body), server: 'gws-stand-in' });
      res.end(body);
    });
    listening.push(new Promise((resolve, reject) => server.once('error', reject).listen(config.tls.port, address, () => resolve())));
  }
  await Promise.all(listening);
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`stand-in servers failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
