/**
 * The two ends of bench/proxy.ts, run as child processes inside the lab namespaces:
 *   server JSON  — in the world namespace: a byte sink (replies with the count) and an echo
 *                  that answers then closes first (so TIME_WAIT stays on the server side).
 *   client JSON  — in the pod namespace: one measurement, printed as JSON on stdout.
 */
import { connect, createServer, type Socket } from 'node:net';

type ClientJob =
  | { mode: 'bulk'; host: string; port: number; bytes: number }
  | { mode: 'rate'; host: string; port: number; durationMs: number; concurrency: number }
  | { mode: 'latency'; host: string; port: number; perSecond: number; count: number }
  | { mode: 'churn'; host: string; port: number; count: number; window: number };

function dial(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port });
    s.setNoDelay(true);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Connect, send one small message, wait for the server's answer and its FIN. */
async function exchange(host: string, port: number, payload: Buffer): Promise<void> {
  const s = await dial(host, port);
  await new Promise<void>((resolve, reject) => {
    s.on('data', () => {});
    s.once('end', () => {
      s.end();
      resolve();
    });
    s.once('error', reject);
    s.write(payload);
  });
  s.destroy();
}

async function client(job: ClientJob): Promise<unknown> {
  const small = Buffer.alloc(64, 1);
  switch (job.mode) {
    case 'bulk': {
      const s = await dial(job.host, job.port);
      const chunk = Buffer.alloc(256 * 1024, 0xab);
      const t0 = performance.now();
      let sent = 0;
      const reply = new Promise<string>((resolve) => {
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString()));
        s.on('end', () => resolve(text));
      });
      while (sent < job.bytes) {
        sent += chunk.length;
        if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
      }
      s.end();
      const counted = Number(await reply);
      const seconds = (performance.now() - t0) / 1000;
      s.destroy();
      return { bytes: counted, seconds, gbitPerSecond: (counted * 8) / seconds / 1e9 };
    }
    case 'rate': {
      let done = 0;
      let failed = 0;
      const end = performance.now() + job.durationMs;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: job.concurrency }, async () => {
          while (performance.now() < end) {
            try {
              await exchange(job.host, job.port, small);
              done++;
            } catch {
              failed++;
            }
          }
        }),
      );
      return { connections: done, failed, perSecond: done / ((performance.now() - t0) / 1000) };
    }
    case 'latency': {
      const samples: number[] = [];
      let failed = 0;
      const interval = 1000 / job.perSecond;
      const t0 = performance.now();
      const pending: Promise<void>[] = [];
      for (let i = 0; i < job.count; i++) {
        const due = t0 + i * interval;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const start = performance.now();
        pending.push(
          exchange(job.host, job.port, small).then(
            () => void samples.push(performance.now() - start),
            () => void failed++,
          ),
        );
      }
      await Promise.all(pending);
      samples.sort((a, b) => a - b);
      const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]!;
      return { count: samples.length, failed, p50: q(0.5), p99: q(0.99) };
    }
    case 'churn': {
      const rates: number[] = [];
      let failed = 0;
      let windowStart = performance.now();
      for (let i = 1; i <= job.count; i++) {
        try {
          await exchange(job.host, job.port, small);
        } catch {
          failed++;
        }
        if (i % job.window === 0) {
          const now = performance.now();
          rates.push(job.window / ((now - windowStart) / 1000));
          windowStart = now;
        }
      }
      return { count: job.count, failed, windowRates: rates };
    }
  }
}

function server(config: { host: string; sinkPort: number; echoPort: number }): Promise<void> {
  const sink = createServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    s.on('data', (d: Buffer) => (n += d.length));
    s.on('end', () => s.end(String(n)));
    s.on('error', () => {});
  });
  const echo = createServer({ allowHalfOpen: true }, (s) => {
    s.setNoDelay(true);
    s.once('data', (d: Buffer) => s.end(d));
    s.on('data', () => {});
    s.on('error', () => {});
  });
  echo.maxConnections = 1_000_000;
  return Promise.all([
    new Promise<void>((r) => sink.listen({ host: config.host, port: config.sinkPort, backlog: 4096 }, r)),
    new Promise<void>((r) => echo.listen({ host: config.host, port: config.echoPort, backlog: 4096 }, r)),
  ]).then(() => void process.stdout.write('ready\n'));
}

const [role, arg] = process.argv.slice(2);
if (role === 'server') {
  await server(JSON.parse(arg!) as { host: string; sinkPort: number; echoPort: number });
} else if (role === 'client') {
  process.stdout.write(JSON.stringify(await client(JSON.parse(arg!) as ClientJob)) + '\n');
  process.exit(0);
} else {
  process.stderr.write('usage: proxy-peer server|client JSON\n');
  process.exit(2);
}
