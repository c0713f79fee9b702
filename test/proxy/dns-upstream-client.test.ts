/**
 * The DNS proxy's upstream client against stand-in nameservers on loopback: how each way a
 * UDP or TCP exchange can end (reply, truncated reply, refusal, silence, a TCP close before
 * the reply) reads to the caller. No root.
 */
import test from 'ava';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { decode, encode, type Question } from 'dns-packet';
import { frame, TcpFrameReader } from '../../src/proxy/dns/tcp-frames.js';
import { UpstreamClient, UpstreamError } from '../../src/proxy/dns/upstream-client.js';

const question: Question = { type: 'A', name: 'example.test', class: 'IN' };
const query = encode({ type: 'query', id: 1, flags: 256, questions: [question] });

/** The reply to QUERY (its id and question), with address ADDRESS and the TC bit when asked. */
function reply(query: Buffer, address: string, truncated = false): Buffer {
  const q = decode(query);
  const flags = 0x8000 | (truncated ? 0x200 : 0);
  return encode({ type: 'response', id: q.id, flags, questions: q.questions, answers: [{ type: 'A', name: question.name, ttl: 30, data: address }] });
}

/** A UDP nameserver on 127.0.0.1 answering each query with ANSWER (nothing when it returns undefined). */
async function udpServer(answer: (query: Buffer) => Buffer | undefined): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.on('message', (msg, from) => {
    const out = answer(msg);
    if (out) socket.send(out, from.port, from.address);
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return socket;
}

/** A TCP nameserver on 127.0.0.1, on PORT: each connection is handed to ON. */
async function tcpServer(port: number, on: (query: Buffer, write: (b: Buffer) => void, end: () => void) => void): Promise<Server> {
  const server = createServer((c) => {
    const reader = new TcpFrameReader(0xffff);
    c.on('data', (d) => {
      for (const q of reader.push(d)) on(Buffer.from(q), (b) => c.write(frame(b)), () => c.end());
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/**
 * A UDP and a TCP nameserver on one port, as a real nameserver listens. The UDP port is the
 * kernel's choice; the TCP one of the same number may be taken by another process meanwhile
 * (EADDRINUSE on a busy machine), so the pair is tried again on a new port.
 */
async function udpAndTcpServers(
  udpAnswer: (query: Buffer) => Buffer | undefined,
  onTcp: (query: Buffer, write: (b: Buffer) => void, end: () => void) => void,
): Promise<{ port: number; udp: Socket; tcp: Server }> {
  for (let attempt = 1; ; attempt++) {
    const udp = await udpServer(udpAnswer);
    const port = (udp.address() as AddressInfo).port;
    try {
      return { port, udp, tcp: await tcpServer(port, onTcp) };
    } catch (err) {
      udp.close();
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === 20) throw err;
    }
  }
}

const client = (port: number, timeoutMs = 2000) => new UpstreamClient({ nameservers: ['127.0.0.1'], timeoutMs, port });

test('a UDP reply is the answer; a truncated one is asked again over TCP', async (t) => {
  const udp = await udpServer((q) => reply(q, '192.0.2.1'));
  t.teardown(() => udp.close());
  const port = (udp.address() as AddressInfo).port;
  const answer = await client(port).query(query, question, false);
  t.is(answer.protocol, 'udp');
  t.is((answer.packet.answers?.[0] as { data: string }).data, '192.0.2.1');

  const { port: tport, udp: truncating, tcp } = await udpAndTcpServers((q) => reply(q, '192.0.2.2', true), (q, write) => write(reply(q, '192.0.2.3')));
  t.teardown(() => (truncating.close(), tcp.close()));
  const whole = await client(tport).query(query, question, false);
  t.is(whole.protocol, 'tcp');
  t.is((whole.packet.answers?.[0] as { data: string }).data, '192.0.2.3');
});

test('silence is a timeout, a closed UDP port a refusal, a TCP close before the reply an error', async (t) => {
  const silent = await udpServer(() => undefined);
  t.teardown(() => silent.close());
  const sport = (silent.address() as AddressInfo).port;
  const timeout = await t.throwsAsync(client(sport, 200).query(query, question, false), { instanceOf: UpstreamError });
  t.is(timeout.reason, 'timeout');
  t.regex(timeout.message, /no UDP reply within 200 ms/);

  // The port of a socket just closed: ICMP port unreachable, read as ECONNREFUSED.
  const closed = await udpServer(() => undefined);
  const cport = (closed.address() as AddressInfo).port;
  closed.close();
  const refused = await t.throwsAsync(client(cport).query(query, question, false), { instanceOf: UpstreamError });
  t.is(refused.reason, 'refused');
  t.regex(refused.message, /UDP: /);

  const hangUp = await tcpServer(0, (_q, _write, end) => end());
  t.teardown(() => hangUp.close());
  const hport = (hangUp.address() as AddressInfo).port;
  const cut = await t.throwsAsync(client(hport).query(query, question, true), { instanceOf: UpstreamError });
  t.is(cut.reason, 'error');
  t.regex(cut.message, /TCP: closed before a reply/);

  // Nothing listens on TCP there.
  const tcpRefused = await t.throwsAsync(client(sport).query(query, question, true), { instanceOf: UpstreamError });
  t.is(tcpRefused.reason, 'refused');
  t.regex(tcpRefused.message, /TCP: connect ECONNREFUSED/);
});
