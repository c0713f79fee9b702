/**
 * WebSocket through a ServiceEntry HTTP port with a real client and server (npm `ws`): the
 * handshake is routed and policy-checked like any request, then relayed both ways, and the
 * access log line says 101 with the relayed byte counts.
 */
import test from 'ava';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import { loopbackServiceEntry } from './helpers/loopback-upstream.js';
import { startTestProxy, eventually } from './helpers/in-process-proxy.js';
import { parseLogLine } from './helpers/access-log-line.js';

async function echoServer(t: import('ava').ExecutionContext): Promise<number> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (ws, req) => {
    ws.send(`hello ${req.headers.host}`);
    ws.on('message', (data) => ws.send(`echo ${String(data)}`));
  });
  t.teardown(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  return (wss.address() as { port: number }).port;
}

const entry = (name: string, port: number) => loopbackServiceEntry(name, port);

function openClient(port: number, host: string): Promise<{ ws: WebSocket; messages: string[] } | { status: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`, { headers: { host } });
    const messages: string[] = [];
    ws.on('message', (d) => messages.push(String(d)));
    ws.once('open', () => resolve({ ws, messages }));
    ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
    ws.once('error', reject);
  });
}

test('WebSocket to a registered host is relayed both ways and logged 101 with byte counts', async (t) => {
  const port = await echoServer(t);
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${entry('ws.example.com', port)}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port });
  const client = await openClient(proxy.port, 'ws.example.com');
  if (!('ws' in client)) return t.fail(`handshake answered ${client.status}`);
  const { ws, messages } = client;
  for (let i = 0; i < 3; i++) ws.send(`ping ${i}`);
  t.true(await eventually(() => messages.length === 4));
  t.deepEqual(messages, ['hello ws.example.com', 'echo ping 0', 'echo ping 1', 'echo ping 2']);
  ws.close();
  await once(ws, 'close');
  t.true(await eventually(() => proxy.accessLog.length === 1));
  const line = parseLogLine(proxy.accessLog[0]!);
  t.is(line.request, 'GET /chat HTTP/1.1');
  t.is(line.code, 101);
  t.is(line.cluster, `outbound|${port}||ws.example.com`);
  // Frames both ways: 3 masked pings + close from the client, 4 texts + close from the server.
  t.true(line.bytesReceived >= 3 * 12, `received ${line.bytesReceived}`);
  t.true(line.bytesSent >= 'hello ws.example.com'.length + 3 * 13, `sent ${line.bytesSent}`);
});

test('WebSocket to an unknown host under REGISTRY_ONLY is refused 502 (BlackHoleCluster), not relayed', async (t) => {
  const port = await echoServer(t);
  const yaml = `outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n---\n${entry('ws.example.com', port)}`;
  const proxy = await startTestProxy(t, yaml, { address: '127.0.0.1', port });
  const client = await openClient(proxy.port, 'evil.example.com');
  t.deepEqual(client, { status: 502 });
  t.true(await eventually(() => proxy.accessLog.length === 1));
  t.is(parseLogLine(proxy.accessLog[0]!).cluster, 'BlackHoleCluster');
});
