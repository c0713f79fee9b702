import test from 'ava';
import { connect as tlsConnect } from 'node:tls';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { parseClientHello } from '../../src/proxy/tls-client-hello.js';
import { parseRequestHead, stripPort } from '../../src/proxy/http-request-head.js';
import { sniff } from '../../src/proxy/sniff.js';

/** The first bytes a real TLS client (Node's OpenSSL) sends, captured on a local socket. */
async function captureClientHello(servername?: string): Promise<Buffer> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const got = new Promise<Buffer>((resolve) =>
    server.once('connection', (s: Socket) => {
      s.once('data', (d: Buffer) => {
        resolve(d);
        s.destroy();
      });
    }),
  );
  const client = tlsConnect({ host: '127.0.0.1', port, ...(servername ? { servername } : {}), rejectUnauthorized: false });
  client.on('error', () => {});
  const hello = await got;
  client.destroy();
  server.close();
  return hello;
}

test('reads SNI from a real ClientHello, and only when complete', async (t) => {
  const hello = await captureClientHello('www.google.com');
  t.deepEqual(parseClientHello(hello), { kind: 'tls', sni: 'www.google.com' });
  for (const cut of [1, 3, 5, 40, hello.length - 1]) {
    t.deepEqual(parseClientHello(hello.subarray(0, cut)), { kind: 'need-more' }, `cut at ${cut}`);
  }
});

test('a ClientHello without SNI is TLS without a name', async (t) => {
  const hello = await captureClientHello(undefined);
  t.deepEqual(parseClientHello(hello), { kind: 'tls', sni: undefined });
});

test('a ClientHello split over two TLS records is reassembled', async (t) => {
  const hello = await captureClientHello('split.example.com');
  const body = hello.subarray(5);
  const half = 60;
  const record = (part: Buffer) => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, part.length >> 8, part.length & 0xff]), part]);
  const split = Buffer.concat([record(body.subarray(0, half)), record(body.subarray(half))]);
  t.deepEqual(parseClientHello(split), { kind: 'tls', sni: 'split.example.com' });
});

test('non-TLS bytes are recognised at once; garbage lengths do not throw', (t) => {
  t.deepEqual(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')), { kind: 'not-tls' });
  t.deepEqual(parseClientHello(Buffer.from([0x16, 0x02])), { kind: 'not-tls' });
  const lying = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0x03, 0x03, 0xff, 0xff]);
  t.deepEqual(parseClientHello(lying), { kind: 'tls', sni: undefined });
});

test('HTTP/1.x heads: method and Host, port stripped; other protocols rejected early', (t) => {
  t.deepEqual(parseRequestHead(Buffer.from('GET /headers HTTP/1.1\r\nHost: httpbin.org\r\nAccept: */*\r\n\r\n')), {
    kind: 'http',
    method: 'GET',
    host: 'httpbin.org',
  });
  t.deepEqual(parseRequestHead(Buffer.from('POST / HTTP/1.1\r\nhost: Example.com:8080\r\n\r\n')), { kind: 'http', method: 'POST', host: 'example.com' });
  t.deepEqual(parseRequestHead(Buffer.from('GET / HTTP/1.0\r\n\r\n')), { kind: 'http', method: 'GET', host: undefined });
  t.deepEqual(parseRequestHead(Buffer.from('GE')), { kind: 'need-more' });
  t.deepEqual(parseRequestHead(Buffer.from('GET /x HTTP/1.1\r\nHost: a.b')), { kind: 'need-more' });
  t.deepEqual(parseRequestHead(Buffer.from('SSH-2.0-OpenSSH\r\n')), { kind: 'not-http' });
  t.deepEqual(parseRequestHead(Buffer.from('GET / SPDY/3\r\n')), { kind: 'not-http' });
  t.is(stripPort('[2001:db8::1]:443'), '2001:db8::1');
  t.is(stripPort('2001:db8::1'), '2001:db8::1');
});

async function pair(): Promise<{ client: Socket; server: Socket; close: () => void }> {
  const srv = createServer({ pauseOnConnect: true });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const accepted = once(srv, 'connection');
  const client = connect((srv.address() as { port: number }).port, '127.0.0.1');
  const [server] = (await accepted) as [Socket];
  return { client, server, close: () => (client.destroy(), server.destroy(), srv.close()) };
}

test('sniff peeks without consuming: the next reader sees every byte, even across chunks', async (t) => {
  const { client, server, close } = await pair();
  client.write('GET /a HTTP/1.1\r\nHo');
  setTimeout(() => client.write('st: httpbin.org\r\n\r\nBODY'), 20);
  const r = await sniff(server, 1000);
  t.deepEqual(r.sniffed, { kind: 'http', host: 'httpbin.org' });
  t.false(r.ended);
  let seen = '';
  server.on('data', (d: Buffer) => (seen += d.toString()));
  server.resume();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(seen, 'GET /a HTTP/1.1\r\nHost: httpbin.org\r\n\r\nBODY');
  close();
});

test('sniff gives up after the timeout for server-first protocols, and reports an early FIN', async (t) => {
  const a = await pair();
  const t0 = Date.now();
  const silent = await sniff(a.server, 80);
  t.deepEqual(silent.sniffed, { kind: 'none' });
  t.true(Date.now() - t0 >= 70);
  a.close();
  const b = await pair();
  b.client.end('\x16\x03');
  const ended = await sniff(b.server, 1000);
  t.true(ended.ended);
  t.deepEqual([...ended.head], [0x16, 0x03]);
  b.close();
});
