/**
 * Policy routing for TPROXY mode, as istio-init installs it: packets carrying the TPROXY mark
 * look up a table whose single route delivers everything locally over lo.
 *   ip rule add fwmark MARK lookup TABLE
 *   ip route add local default dev lo table TABLE
 */
import type { IpFamily } from '../net/cidr.js';
import type { TproxyRoutes } from '../rules/ir.js';
import { runChecked, type Executor } from './executor.js';

const famFlag = (f: IpFamily) => (f === 4 ? '-4' : '-6');

async function ruleCount(executor: Executor, family: IpFamily, mark: number, table: number): Promise<number> {
  const r = await executor.run(['ip', famFlag(family), 'rule', 'show']);
  if (r.exitCode !== 0) return 0;
  const want = new RegExp(`fwmark 0x${mark.toString(16)}(?:/0x[0-9a-f]+)? lookup ${table}\\b`);
  return r.stdout.split('\n').filter((l) => want.test(l)).length;
}

async function hasLocalDefault(executor: Executor, family: IpFamily, table: number): Promise<boolean> {
  const r = await executor.run(['ip', famFlag(family), 'route', 'show', 'table', String(table)]);
  return r.exitCode === 0 && /^local default dev lo\b/m.test(r.stdout);
}

/** What ensureTproxyRoutes added, so a failed apply can take exactly that back. */
export interface AddedRoutes {
  rules: IpFamily[];
  routes: IpFamily[];
}

/**
 * Adds the fwmark rule and local route for each family when missing (idempotent). Each
 * addition is noted in `added` as it happens, so a failure halfway can be undone exactly.
 */
export async function ensureTproxyRoutes(
  executor: Executor,
  spec: TproxyRoutes,
  added: AddedRoutes = { rules: [], routes: [] },
): Promise<AddedRoutes> {
  for (const f of spec.families) {
    if ((await ruleCount(executor, f, spec.mark, spec.table)) === 0) {
      await runChecked(executor, ['ip', famFlag(f), 'rule', 'add', 'fwmark', String(spec.mark), 'lookup', String(spec.table)], {
        context: 'adding the TPROXY policy rule',
      });
      added.rules.push(f);
    }
    if (!(await hasLocalDefault(executor, f, spec.table))) {
      await runChecked(executor, ['ip', famFlag(f), 'route', 'add', 'local', 'default', 'dev', 'lo', 'table', String(spec.table)], {
        context: 'adding the TPROXY local route',
      });
      added.routes.push(f);
    }
  }
  return added;
}

/** Removes what ensureTproxyRoutes added in this run (rollback). */
export async function undoTproxyRoutes(executor: Executor, spec: TproxyRoutes, added: AddedRoutes): Promise<void> {
  for (const f of added.rules) {
    await executor.run(['ip', famFlag(f), 'rule', 'del', 'fwmark', String(spec.mark), 'lookup', String(spec.table)]);
  }
  for (const f of added.routes) {
    await executor.run(['ip', famFlag(f), 'route', 'del', 'local', 'default', 'dev', 'lo', 'table', String(spec.table)]);
  }
}

/** Removes every fwmark rule and the local route for this mark and table; returns what went. */
export async function removeTproxyRoutes(executor: Executor, mark: number, table: number): Promise<string[]> {
  const removed: string[] = [];
  for (const f of [4, 6] as const) {
    for (let n = await ruleCount(executor, f, mark, table); n > 0; n--) {
      await runChecked(executor, ['ip', famFlag(f), 'rule', 'del', 'fwmark', String(mark), 'lookup', String(table)]);
      removed.push(`ip ${famFlag(f)} rule fwmark ${mark} lookup ${table}`);
    }
    if (await hasLocalDefault(executor, f, table)) {
      await runChecked(executor, ['ip', famFlag(f), 'route', 'del', 'local', 'default', 'dev', 'lo', 'table', String(table)]);
      removed.push(`ip ${famFlag(f)} route local default dev lo table ${table}`);
    }
  }
  return removed;
}
