/**
 * The native h2c fast path against clients that try something: a second stream on a served
 * connection to a host the policy refuses (multiplexing must not bypass REGISTRY_ONLY), resets
 * mid-request, oversized header lists, garbage after the preface or after a served request,
 * a client that never reads (flow control must stall the upstream, not grow buffers), and
 * 1000 streams on one connection.
 */
import test from 'ava';
import { connect as tcpConnect, type Socket } from 'node:net';
import { addonLoads } from '../../src/native.js';
import { eventually, startTestProxy, type TestProxy } from './helpers/in-process-proxy.js';
import { fastPathMesh } from './helpers/fast-path-differential.js';
import { h2cOrigin, h2Request, h2Session, type Origin } from './helpers/h2c-fast-path.js';

const skip = !addonLoads() || process.platform !== 'linux';
const maybe = skip ? test.skip : test;

const REFUSED_STREAM = 7;

async function setup(t: import('ava').ExecutionContext): Promise<{ proxy: TestProxy; origin: Origin }> {
  const origin = await h2cOrigin(t);
  const proxy = await startTestProxy(t, fastPathMesh(origin.port, 1), { address: '127.0.0.1', port: origin.port }, { nativeHttp: true });
  return { proxy, origin };
}

// ---- a minimal raw HTTP/2 client: frames written by hand, what comes back read as frames ----

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK: a literal field without indexing, name by static-table index (RFC 7541 §6.2.2). */
function literal(index: number, value: string): Buffer {
  return Buffer.concat([Buffer.from([index, value.length]), Buffer.from(value, 'latin1')]);
}

/** HEADERS (END_HEADERS|END_STREAM) for GET `path` on `authority`. */
function getHeaders(stream: number, path: string, authority: string): Buffer {
  // 0x82 :method GET, 0x86 :scheme http; :authority is static index 1, :path index 4.
  return frame(1, 0x5, stream, Buffer.concat([Buffer.from([0x82, 0x86]), literal(1, authority), literal(4, path)]));
}

interface RawClient {
  socket: Socket;
  frames: { type: number; flags: number; stream: number; payload: Buffer }[];
  closed: () => boolean;
}

function rawClient(port: number, read = true): Promise<RawClient> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    const c: RawClient = { socket, frames: [], closed: () => closed };
    let closed = false;
    let buf = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('close', () => (closed = true));
    if (read) {
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
          const len = buf.readUIntBE(0, 3);
          c.frames.push({ type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) });
          buf = buf.subarray(9 + len);
        }
      });
    } else {
      socket.pause();
    }
    socket.once('connect', () => resolve(c));
  });
}

maybe('a later stream to a host the policy refuses is refused, never forwarded, and its retry gets the JS path answer', async (t) => {
  const { proxy, origin } = await setup(t);
  const session = await h2Session(proxy.port);
  let goaway: number | undefined;
  session.on('goaway', (_code: number, last: number) => (goaway = last));
  const first = await h2Request(session, { ':path': '/cl', ':authority': `api.example.com:${origin.port}` });
  t.is(first.status, 200);
  // The same connection, another authority: REGISTRY_ONLY has no route for it.
  const bypass = await h2Request(session, { ':path': '/cl', ':authority': `evil.example.org:${origin.port}` });
  t.is(bypass.status, undefined, 'no answer of any kind on the served connection');
  t.is(bypass.error, `rst ${REFUSED_STREAM}`, 'RST_STREAM REFUSED_STREAM: not processed, safe to retry');
  t.true(await eventually(() => goaway !== undefined), 'GOAWAY sent');
  t.is(goaway, 1, "GOAWAY's last stream id is the last stream accepted");
  session.close();
  // The client's retry, on a new connection: its first stream goes to the JS path.
  const retrySession = await h2Session(proxy.port);
  const retry = await h2Request(retrySession, { ':path': '/cl', ':authority': `evil.example.org:${origin.port}` });
  retrySession.close();
  t.is(retry.status, 502);
  t.true(await eventually(() => proxy.accessLog.some((l) => l.includes('evil.example.org') && l.includes('BlackHoleCluster'))), proxy.accessLog.join('\n'));
  t.false(origin.seen.some((s) => s.host.startsWith('evil')), 'the refused host never reached upstream');
  t.is(origin.seen.length, 1);
});

maybe('a client reset mid-request body is logged DC and the partial request is not completed upstream', async (t) => {
  const { proxy, origin } = await setup(t);
  const session = await h2Session(proxy.port);
  const stream = session.request({ ':method': 'POST', ':path': '/echo', ':authority': `api.example.com:${origin.port}`, 'content-length': '100' }, { endStream: false });
  stream.on('error', () => {});
  stream.write('0123456789');
  await eventually(() => origin.seen.length === 1);
  stream.close(8); // CANCEL
  t.true(await eventually(() => proxy.accessLog.length === 1), 'logged');
  t.regex(proxy.accessLog[0]!, /"POST \/echo HTTP\/2" 0 DC 10 0 /);
  t.false(origin.seen[0]!.complete);
  session.close();
});

maybe('an oversized header list: first stream handed back whole, later stream refused', async (t) => {
  const { proxy, origin } = await setup(t);
  const big = 'h'.repeat(40_000);
  const s1 = await h2Session(proxy.port);
  const first = await h2Request(s1, { ':path': '/cl', ':authority': `api.example.com:${origin.port}`, 'x-big': big });
  s1.close();
  // Forwarded by the JS path; the origin's own header limit (Node's 16 KiB) answers.
  t.is(first.status, 431, `the JS path forwarded it: ${JSON.stringify(first)}`);
  t.is(proxy.server.nativeHttpStats!.handedBack, 1);
  t.is(proxy.server.nativeHttpStats!.served, 0);
  const s2 = await h2Session(proxy.port);
  t.is((await h2Request(s2, { ':path': '/cl', ':authority': `api.example.com:${origin.port}` })).status, 200);
  const later = await h2Request(s2, { ':path': '/cl', ':authority': `api.example.com:${origin.port}`, 'x-big': big });
  s2.close();
  t.is(later.error, `rst ${REFUSED_STREAM}`);
  t.true(await eventually(() => proxy.server.nativeHttpStats!.served === 1), 'the second connection served natively');
});

maybe('garbage right after the preface goes to the JS path; garbage after a served request gets GOAWAY PROTOCOL_ERROR', async (t) => {
  const { proxy, origin } = await setup(t);
  const early = await rawClient(proxy.port);
  early.socket.write(Buffer.concat([PREFACE, Buffer.from('this is not a frame at all, not even close........', 'latin1')]));
  t.true(await eventually(() => early.closed(), 3000), `closed (${JSON.stringify(proxy.server.nativeHttpStats)} ${early.frames.map((f) => f.type).join()})`);
  t.is(proxy.server.nativeHttpStats!.handedBack, 1, 'handed back: node:http2 judged it');
  t.true(early.frames.some((f) => f.type === 7), 'GOAWAY from node:http2');

  const late = await rawClient(proxy.port);
  late.socket.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), getHeaders(1, '/cl', `api.example.com:${origin.port}`)]));
  t.true(await eventually(() => late.frames.some((f) => f.type === 0 && f.stream === 1 && (f.flags & 1) === 1)), 'the request was answered');
  // A DATA frame on stream 0 is a connection error (RFC 9113 §6.1).
  late.socket.write(frame(0, 0, 0, Buffer.from('garbage')));
  t.true(await eventually(() => late.closed(), 3000), 'the connection is closed');
  const goaway = late.frames.find((f) => f.type === 7);
  t.truthy(goaway, 'GOAWAY');
  t.is(goaway!.payload.readUInt32BE(4), 1, 'PROTOCOL_ERROR');
  t.true(await eventually(() => proxy.server.nativeHttpStats!.served === 1));
});

maybe('a client that never reads stalls its stream: the upstream is held back by flow control, other clients are served', async (t) => {
  const { proxy, origin } = await setup(t);
  const stalled = await rawClient(proxy.port, false);
  stalled.socket.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), getHeaders(1, '/huge', `api.example.com:${origin.port}`)]));
  t.true(await eventually(() => origin.hugeWritten() > 0), 'the origin answers');
  await new Promise((r) => setTimeout(r, 1500));
  const a = origin.hugeWritten();
  await new Promise((r) => setTimeout(r, 500));
  const b = origin.hugeWritten();
  t.log(`${b} bytes left the origin`);
  t.is(a, b, 'the upstream is stalled');
  // 64 MiB offered; what left the origin sits in socket buffers and at most a bounded
  // per-stream buffer in the proxy.
  t.true(b < 16 << 20, `${b} bytes left the origin`);
  const other = await h2Session(proxy.port);
  t.is((await h2Request(other, { ':path': '/cl', ':authority': `api.example.com:${origin.port}` })).status, 200, 'another client is served meanwhile');
  other.close();
  stalled.socket.destroy();
});

maybe('1000 streams on one connection', async (t) => {
  t.timeout(60_000);
  const { proxy, origin } = await setup(t);
  const session = await h2Session(proxy.port);
  const answers = await Promise.all(Array.from({ length: 1000 }, () => h2Request(session, { ':path': '/cl', ':authority': `api.example.com:${origin.port}` })));
  session.close();
  t.is(answers.filter((a) => a.status === 200 && a.body === 'hello').length, 1000);
  t.is(origin.seen.length, 1000);
  t.true(await eventually(() => proxy.server.nativeHttpStats!.served === 1000), 'all served natively');
  t.true(await eventually(() => proxy.accessLog.length === 1000));
});

maybe('a client that waits for the server SETTINGS gets them at once and is served natively', async (t) => {
  const { proxy, origin } = await setup(t);
  const waiting = await rawClient(proxy.port);
  waiting.socket.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0))]));
  const t0 = Date.now();
  t.true(await eventually(() => waiting.frames.some((f) => f.type === 4 && (f.flags & 1) === 0), 2000), 'the server SETTINGS arrive');
  t.true(Date.now() - t0 < 1000, `within ${Date.now() - t0} ms, not after the slow-client bound`);
  // What grpc-js does once it has them: the ACK, then its first request.
  waiting.socket.write(Buffer.concat([frame(4, 1, 0, Buffer.alloc(0)), getHeaders(1, '/cl', `api.example.com:${origin.port}`)]));
  t.true(await eventually(() => waiting.frames.some((f) => f.type === 1 && f.stream === 1)), 'answered');
  t.true(await eventually(() => proxy.server.nativeHttpStats!.served === 1), 'served natively');
  t.is(proxy.server.nativeHttpStats!.handedBack, 0);
  waiting.socket.destroy();
});

maybe('a client that got the early SETTINGS and asks for what the JS path serves is handed back; node:http2 takes it without a protocol error', async (t) => {
  const { proxy, origin } = await setup(t);
  const waiting = await rawClient(proxy.port);
  waiting.socket.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0))]));
  t.true(await eventually(() => waiting.frames.some((f) => f.type === 4 && (f.flags & 1) === 0), 2000));
  // ACK and a request REGISTRY_ONLY has no route for: the JS path answers it (502).
  waiting.socket.write(Buffer.concat([frame(4, 1, 0, Buffer.alloc(0)), getHeaders(1, '/cl', `evil.example.org:${origin.port}`)]));
  t.true(await eventually(() => waiting.frames.some((f) => f.type === 1 && f.stream === 1), 3000), 'answered by node:http2');
  // node:http2's own SETTINGS: the client ACKs them, which node:http2 must take as the one ACK it awaits.
  waiting.socket.write(frame(4, 1, 0, Buffer.alloc(0)));
  await new Promise((r) => setTimeout(r, 200));
  const goaways = waiting.frames.filter((f) => f.type === 7 && f.payload.readUInt32BE(4) !== 0);
  t.deepEqual(goaways, [], 'no GOAWAY with an error');
  t.is(proxy.server.nativeHttpStats!.handedBack, 1);
  t.true(await eventually(() => proxy.accessLog.some((l) => l.includes('evil.example.org') && l.includes('BlackHoleCluster'))));
  waiting.socket.destroy();
});

maybe('an idle connection gets a GOAWAY after --idle-timeout and is closed, as node:http2 does', async (t) => {
  const origin = await h2cOrigin(t);
  const proxy = await startTestProxy(t, fastPathMesh(origin.port, 1), { address: '127.0.0.1', port: origin.port }, { nativeHttp: true, idleTimeoutMs: 300 });
  const session = await h2Session(proxy.port);
  let goaway = false;
  let closed = false;
  session.on('goaway', () => (goaway = true));
  session.on('close', () => (closed = true));
  t.is((await h2Request(session, { ':path': '/cl', ':authority': `api.example.com:${origin.port}` })).status, 200);
  t.false(goaway, 'not while a stream is open');
  t.true(await eventually(() => goaway && closed, 3000), 'GOAWAY, then closed');
  t.true(await eventually(() => proxy.server.nativeHttpStats!.open === 0), 'the fast path let go of it');
});

maybe('draining: a connection with a stream in flight gets a GOAWAY, the stream finishes', async (t) => {
  const { proxy, origin } = await setup(t);
  const session = await h2Session(proxy.port);
  let goaway = false;
  session.on('goaway', () => (goaway = true));
  const slow = h2Request(session, { ':path': '/slow', ':authority': `api.example.com:${origin.port}` });
  await eventually(() => origin.seen.length === 1);
  (proxy.server as unknown as { http: { closeIdle(): void } }).http.closeIdle();
  t.true(await eventually(() => goaway, 2000), 'GOAWAY at once');
  const answer = await slow;
  t.is(answer.status, 200);
  t.is(answer.body, 'late');
});

maybe('a GOAWAY from the client: its stream in flight still gets its answer', async (t) => {
  const { proxy, origin } = await setup(t);
  const session = await h2Session(proxy.port);
  const slow = h2Request(session, { ':path': '/slow', ':authority': `api.example.com:${origin.port}` });
  await eventually(() => origin.seen.length === 1);
  session.goaway(0, 1);
  const answer = await slow;
  t.is(answer.status, 200);
  t.is(answer.body, 'late');
  t.true(await eventually(() => proxy.accessLog.length === 1));
  t.regex(proxy.accessLog[0]!, /"GET \/slow HTTP\/2" 200 - /);
});
