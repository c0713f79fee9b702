/**
 * Runs a seed's steps in a fresh lab world and reports them. Every namespace, process and
 * /etc/netns file is removed when it ends — normally, on an error, or on Ctrl-C / SIGTERM.
 */
import { dnsSteps } from './dns-steps.js';
import { egressSteps } from './egress-steps.js';
import { gatewaySteps } from './gateway-steps.js';
import { LabReporter, type ReportedStep } from './lab-report.js';
import { LabSession, type CommandRecord } from './lab-session.js';
import type { LabStep } from './lab-step.js';
import { labPreflight } from './preflight.linux.js';
import { tlsOriginationSteps } from './tls-origination-steps.js';

export type Seed = 'egress' | 'gateway' | 'tls-origination';

export const SEEDS: Record<Seed, { title: string; steps: readonly LabStep[] }> = {
  egress: { title: 'Accessing External Services (egress)', steps: [...egressSteps, ...dnsSteps] },
  gateway: { title: 'Egress gateway for external services', steps: gatewaySteps },
  'tls-origination': { title: 'Egress TLS Origination', steps: tlsOriginationSteps },
};

export interface LabOptions {
  seed: Seed;
  json: boolean;
  keep: boolean;
  color: boolean;
}

/** Returns the process exit code: 0 when every step is as expected. */
export async function runLab(options: LabOptions): Promise<number> {
  await labPreflight();
  const reporter = new LabReporter(process.stdout, options.color, options.json);
  const { title, steps } = SEEDS[options.seed];
  reporter.progress(`building the lab world (pod and world namespaces, test CA, stand-ins for httpbin.org and www.google.com)`);
  const setup: CommandRecord[] = [];
  const session = await LabSession.open((c) => setup.push(c));
  const stopOnSignal = makeSignalCleanup(session);
  try {
    for (const c of setup) reporter.progress(`${c.display}`);
    reporter.progress(`interpose proxy listening in ${session.world.pod.name} as uid 1337 (config ${session.configFile})`);
    const results: ReportedStep[] = [];
    for (const [i, step] of steps.entries()) {
      reporter.stepStart(i + 1, steps.length, step.title, step.explain);
      session.newAccessLog();
      let result: ReportedStep;
      try {
        const r = await step.run(session);
        result = { id: step.id, title: step.title, ...r, accessLog: session.newAccessLog() };
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        result = { id: step.id, title: step.title, expected: '(step ran)', observed: `error: ${message}`, ok: false, commands: [], accessLog: session.newAccessLog() };
      }
      results.push(result);
      reporter.stepDone(result);
    }
    reporter.summary(title, results);
    if (options.keep) await keepUntilInterrupted(session);
    return results.every((r) => r.ok) ? 0 : 1;
  } finally {
    stopOnSignal();
    await session.close();
  }
}

/** Ctrl-C or SIGTERM: tear everything down, then exit 130 / 143. */
function makeSignalCleanup(session: LabSession): () => void {
  let closing = false;
  const handler = (signal: NodeJS.Signals) => {
    if (closing) return;
    closing = true;
    process.stderr.write(`\ninterpose lab: ${signal}: removing the lab's namespaces and processes…\n`);
    void session.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** --keep: leave everything running for exploration until Ctrl-C. */
async function keepUntilInterrupted(session: LabSession): Promise<void> {
  const { pod, world } = session.world;
  process.stderr.write(
    `\nThe lab is still running (--keep). In another terminal:\n` +
      `  sudo ip netns exec ${pod.name} bash           # the pod: curl http://httpbin.org/headers, iptables-save\n` +
      `  sudo ip netns exec ${world.name} bash         # the world with the stand-in services\n` +
      `  sudo interpose trace --from-kernel --network-namespace ${pod.name} --src 198.51.100.10 --dst 203.0.113.10 --dport 80\n` +
      `  config: ${session.configFile} (edit it, then the proxy reloads)\n` +
      `Press Ctrl-C to remove everything.\n`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
  });
}
