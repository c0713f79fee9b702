import test from 'ava';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessLog, formatJson, formatText, isoTime, type AccessLogEntry } from '../../src/proxy/access-log.js';
import { ValidationError } from '../../src/errors/index.js';
import { parseLogLine } from './helpers/access-log-line.js';

const http: AccessLogEntry = {
  startTime: new Date('2026-01-24T12:17:11.640Z'),
  method: 'GET',
  path: '/headers',
  protocol: 'HTTP/1.1',
  responseCode: 200,
  responseFlags: '-',
  bytesReceived: 0,
  bytesSent: 599,
  durationMs: 214.4,
  upstreamServiceTimeMs: 214,
  userAgent: 'curl/7.88.1',
  requestId: '17fde8f7-fa62-4b39-8999-302324e6def2',
  authority: 'httpbin.org',
  upstreamHost: '203.0.113.10:80',
  upstreamCluster: 'outbound|80||httpbin.org',
  upstreamLocalAddress: '198.51.100.10:55314',
  downstreamLocalAddress: '203.0.113.10:80',
  downstreamRemoteAddress: '198.51.100.10:55300',
};

test('HTTP requests: Envoy default format, field for field, "-" for what is missing', (t) => {
  t.is(
    formatText(http),
    '[2026-01-24T12:17:11.640Z] "GET /headers HTTP/1.1" 200 - 0 599 214 214 "-" "curl/7.88.1" ' +
      '"17fde8f7-fa62-4b39-8999-302324e6def2" "httpbin.org" "203.0.113.10:80" outbound|80||httpbin.org ' +
      '198.51.100.10:55314 203.0.113.10:80 198.51.100.10:55300 -',
  );
});

test('TCP/TLS connections: "- - -", code 0 and the SNI last', (t) => {
  const line = formatText({
    startTime: new Date('2026-01-24T12:48:54.977Z'),
    responseCode: 0,
    responseFlags: '-',
    bytesReceived: 601,
    bytesSent: 17766,
    durationMs: 1289,
    upstreamHost: '203.0.113.20:443',
    upstreamCluster: 'outbound|443||www.google.com',
    upstreamLocalAddress: '198.51.100.10:59480',
    downstreamLocalAddress: '203.0.113.20:443',
    downstreamRemoteAddress: '198.51.100.10:59478',
    requestedServerName: 'www.google.com',
  });
  t.is(
    line,
    '[2026-01-24T12:48:54.977Z] "- - -" 0 - 601 17766 1289 - "-" "-" "-" "-" "203.0.113.20:443" ' +
      'outbound|443||www.google.com 198.51.100.10:59480 203.0.113.20:443 198.51.100.10:59478 www.google.com',
  );
  const parsed = parseLogLine(line);
  t.is(parsed.serverName, 'www.google.com');
  t.is(parsed.bytesSent, 17766);
});

test('JSON holds the same fields by name', (t) => {
  const j = JSON.parse(formatJson(http)) as Record<string, unknown>;
  t.like(j, {
    start_time: '2026-01-24T12:17:11.640Z',
    method: 'GET',
    path: '/headers',
    protocol: 'HTTP/1.1',
    response_code: 200,
    response_flags: '-',
    bytes_received: 0,
    bytes_sent: 599,
    duration: 214,
    upstream_service_time: '214',
    x_forwarded_for: null,
    user_agent: 'curl/7.88.1',
    authority: 'httpbin.org',
    upstream_host: '203.0.113.10:80',
    upstream_cluster: 'outbound|80||httpbin.org',
    upstream_local_address: '198.51.100.10:55314',
    downstream_local_address: '203.0.113.10:80',
    downstream_remote_address: '198.51.100.10:55300',
    requested_server_name: null,
  });
  t.is(Object.keys(j).length, 20);
});

test('a file gets the lines of one loop turn in one append, written by the end of the next turn', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'interpose-access-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'access.log');
  const log = new AccessLog(file, 'TEXT');
  log.write(http);
  log.write({ ...http, path: '/second' });
  t.is(readFileSync(file, 'utf8'), '', 'nothing written during the turn that logged them');
  await new Promise((r) => setImmediate(r));
  // Appended on that immediate: no thread-pool round trip to wait for.
  t.is(readFileSync(file, 'utf8'), `${formatText(http)}\n${formatText({ ...http, path: '/second' })}\n`);
  log.write({ ...http, path: '/last' });
  await log.close();
  t.true(readFileSync(file, 'utf8').endsWith(`${formatText({ ...http, path: '/last' })}\n`), 'close() writes what is pending');
  log.write(http);
  await new Promise((r) => setImmediate(r));
  t.is(readFileSync(file, 'utf8').split('\n').length, 4, 'nothing is written after close()');
});

test('lines formatted elsewhere (by the native fast path) go out after the pending ones, as UTF-8; JSON and "off" take none', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'interpose-access-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'access.log');
  const log = new AccessLog(file, 'TEXT');
  t.true(log.writesText);
  log.write(http);
  // A latin1 byte in a header value: one character on the JS path, two UTF-8 bytes in the file.
  const native = `${formatText({ ...http, userAgent: 'ua\u00e9' })}\n`;
  log.writeLines(Buffer.from(native, 'utf8'));
  t.is(readFileSync(file, 'utf8'), `${formatText(http)}\n${native}`, 'in order, at once');
  await log.close();

  const seen: string[] = [];
  const direct = new AccessLog((line) => seen.push(line), 'TEXT');
  direct.writeLines(Buffer.from(`${native}${formatText(http)}\n`, 'utf8'));
  t.deepEqual(seen, [native.slice(0, -1), formatText(http)], 'a function gets them one line at a time, as formatText() returns them');

  t.false(new AccessLog(join(dir, 'json.log'), 'JSON').writesText);
  const off = new AccessLog('off', 'TEXT');
  t.false(off.writesText);
  off.writeLines(Buffer.from(native));
});

test('a file that cannot be opened is refused naming --access-log', (t) => {
  const err = t.throws(() => new AccessLog('/nonexistent-dir/access.log', 'TEXT'), { instanceOf: ValidationError });
  t.regex(err!.message, /--access-log.*\/nonexistent-dir\/access\.log.*ENOENT/);
});

test('start times read as toISOString() writes them, from the cached second or not', (t) => {
  // Milliseconds of one second in turn (the cached path), across seconds, before 1970 and
  // beyond year 9999 (toISOString's extended years), then back to an earlier second.
  const times = [
    Date.UTC(2026, 11, 6, 3, 40, 20, 0), Date.UTC(2026, 11, 6, 3, 40, 20, 7), Date.UTC(2026, 11, 6, 3, 40, 20, 42),
    Date.UTC(2026, 11, 6, 3, 40, 20, 999), Date.UTC(2026, 11, 6, 3, 40, 21, 1), -1, -999, -1000, -1001, 0,
    8.64e15, 8.64e15 - 1, -8.64e15, 253402300799999, 253402300800000, Date.UTC(2026, 11, 6, 3, 40, 20, 5),
  ];
  for (const ms of times) t.is(isoTime(new Date(ms)), new Date(ms).toISOString(), String(ms));
  for (let ms = 1_733_450_000_000; ms < 1_733_450_002_500; ms += 7) t.is(isoTime(new Date(ms)), new Date(ms).toISOString());
  t.throws(() => isoTime(new Date(NaN)), { instanceOf: RangeError });
});
