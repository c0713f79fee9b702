/**
 * An upstream that speaks only HTTP/2 over cleartext (node:http2 without allowHTTP1), for the
 * HTTP/2 proxy tests: it records every stream it was sent and answers, fails or stalls by path.
 */
import type { ExecutionContext } from 'ava';
import { once } from 'node:events';
import { constants, createServer as createHttp2Server, type ServerHttp2Session } from 'node:http2';

/** What an h2c-only upstream (node:http2 without allowHTTP1) saw of one request. */
export interface SeenStream {
  method: string;
  path: string;
  authority: string;
  headers: Record<string, unknown>;
  body: string;
}

/**
 * An upstream that speaks only HTTP/2 over cleartext: an HTTP/1.1 request gets no answer. `/503-once`
 * answers 503 to its first request, `/refused-once` resets its first stream with REFUSED_STREAM (both
 * once per path: `/503-once?a` and `/503-once?b` fail once each), `/cut` drops the connection after
 * the first body bytes, `/trailers` sends trailers, `/big` sends 8 MiB, `/slow` answers after 2 s,
 * `/slow-once` answers its first request after 2 s and the others at once.
 */
export async function h2cOnlyUpstream(t: ExecutionContext): Promise<{ port: number; seen: SeenStream[] }> {
  const seen: SeenStream[] = [];
  const server = createHttp2Server();
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  const asked = new Map<string, number>();
  server.on('stream', (stream, headers) => {
    // The streams this upstream resets itself report that as an error on its side.
    stream.on('error', () => {});
    let body = '';
    stream.on('data', (d: Buffer) => (body += d.toString()));
    stream.on('end', () => {
      const target = String(headers[':path']);
      const path = target.split('?')[0]!;
      const n = (asked.get(target) ?? 0) + 1;
      asked.set(target, n);
      seen.push({ method: String(headers[':method']), path: target, authority: String(headers[':authority']), headers: { ...headers }, body });
      if (path === '/refused-once' && n === 1) {
        stream.close(constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      if (path === '/cut') {
        stream.respond({ ':status': 200 });
        // Node's close() would end the stream cleanly first: drop the connection instead.
        stream.write('partial', () => setTimeout(() => stream.session?.destroy(), 50));
        return;
      }
      if (path === '/big') {
        stream.respond({ ':status': 200 });
        stream.end(Buffer.alloc(8 * 1024 * 1024, 'x'));
        return;
      }
      if (path === '/503-once' && n === 1) {
        stream.respond({ ':status': 503 }, { endStream: true });
        return;
      }
      if (path === '/slow' || (path === '/slow-once' && n === 1)) {
        setTimeout(() => {
          if (stream.destroyed) return;
          stream.respond({ ':status': 200 });
          stream.end('late');
        }, 2000).unref();
        return;
      }
      const trailers = path === '/trailers';
      stream.respond({ ':status': 201, 'x-upstream': 'h2', 'set-cookie': ['a=1', 'b=2'] }, { waitForTrailers: trailers });
      if (trailers) stream.once('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
      stream.end(`h2 answer to ${String(headers[':method'])} ${target} body=${body.length > 64 ? `${body.length} bytes` : body}`);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sessions) s.destroy();
    server.close();
  });
  return { port: (server.address() as { port: number }).port, seen };
}
