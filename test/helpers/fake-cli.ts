import type { ExecutionContext } from 'ava';
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Recorded platform outputs used by the discovery tests. */
export const FIXTURES = fileURLToPath(new URL('../fixtures/discovery/', import.meta.url));

/** What a fake CLI does when called with exactly `args` (space-joined argv). */
export interface FakeRule {
  readonly args: string;
  /** A fixture file (under test/fixtures/discovery) printed on stdout. */
  readonly stdoutFixture?: string;
  readonly stdout?: string;
  /** A fixture file printed on stderr. */
  readonly stderrFixture?: string;
  readonly stderr?: string;
  readonly exit?: number;
  /** Hang (for timeout tests): the script sleeps instead of answering. */
  readonly hang?: boolean;
}

export interface FakeClis {
  /** A directory holding only the fake CLIs: use it as the whole PATH. */
  readonly dir: string;
  /** An environment whose PATH holds only the fakes, so no real CLI on the machine answers. */
  readonly env: NodeJS.ProcessEnv;
  /** Every argv (space-joined) a fake was called with, in order. */
  calls(tool: string): Promise<string[]>;
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Writes small sh scripts named after platform CLIs into a fresh temp dir (removed in
 * t.teardown). Each prints a recorded fixture for the exact argv it expects and fails loudly
 * (exit 97) on any other, so a test also pins the command line discovery runs.
 */
export async function fakeClis(t: ExecutionContext, clis: Record<string, readonly FakeRule[]>): Promise<FakeClis> {
  const dir = await mkdtemp(join(tmpdir(), 'interpose-fake-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [tool, rules] of Object.entries(clis)) {
    const cases: string[] = [];
    for (const [i, rule] of rules.entries()) {
      const out = join(dir, `.${tool}.${i}.out`);
      const err = join(dir, `.${tool}.${i}.err`);
      await writeFile(out, rule.stdoutFixture ? await readFile(join(FIXTURES, rule.stdoutFixture)) : (rule.stdout ?? ''));
      await writeFile(err, rule.stderrFixture ? await readFile(join(FIXTURES, rule.stderrFixture)) : (rule.stderr ?? ''));
      const body = rule.hang
        ? 'exec /bin/sleep 30'
        : `/bin/cat ${quote(out)}; /bin/cat ${quote(err)} >&2; exit ${rule.exit ?? 0}`;
      cases.push(`  ${quote(rule.args)}) ${body};;`);
    }
    const script = [
      '#!/bin/sh',
      `printf '%s\\n' "$*" >> ${quote(join(dir, `.${tool}.calls`))}`,
      'case "$*" in',
      ...cases,
      `  *) printf 'fake ${tool}: no rule for: %s\\n' "$*" >&2; exit 97;;`,
      'esac',
      '',
    ].join('\n');
    await writeFile(join(dir, tool), script);
    await chmod(join(dir, tool), 0o755);
  }
  return {
    dir,
    env: { PATH: dir },
    calls: async (tool) =>
      (await readFile(join(dir, `.${tool}.calls`), 'utf8').catch(() => ''))
        .split('\n')
        .filter((l) => l !== ''),
  };
}

/** The VPC that each family's recorded describe-cluster fixture names. */
const EKS_FIXTURE_VPC = { 4: 'vpc-0a1b2c3d4e5f67890', 6: 'vpc-06f0e1d2c3b4a5968' } as const;

/**
 * The three aws calls EKS discovery makes, in order — describe-cluster, list-addons, then
 * describe-vpcs of the cluster's VPC — answered from the recorded fixtures of one family, with
 * `--region` on each when a region is given.
 */
export function eksCalls(cluster: string, o: { region?: string; family?: 4 | 6; addons: string }): FakeRule[] {
  const family = o.family ?? 4;
  const region = o.region ? ` --region ${o.region}` : '';
  return [
    { args: `eks describe-cluster --name ${cluster}${region} --output json`, stdoutFixture: `eks-describe-ipv${family}.json` },
    { args: `eks list-addons --cluster-name ${cluster}${region} --output json`, stdoutFixture: o.addons },
    { args: `ec2 describe-vpcs --vpc-ids ${EKS_FIXTURE_VPC[family]}${region} --output json`, stdoutFixture: `eks-vpcs-ipv${family}.json` },
  ];
}
