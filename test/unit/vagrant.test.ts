import test from 'ava';
import { execa } from 'execa';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFile(`${ROOT}${p}`, 'utf8');
const has = async (tool: string) => (await execa('sh', ['-c', `command -v ${tool}`], { reject: false })).exitCode === 0;

// ruby comes from scripts/install-system-deps.sh (so CI runs this); without it the test is
// skipped, not counted as a pass.
const hasRuby = spawnSync('sh', ['-c', 'command -v ruby']).status === 0;
if (!hasRuby) console.log('SKIP: ruby is not installed (scripts/install-system-deps.sh installs it)');
(hasRuby ? test : test.skip)('Vagrantfile parses (ruby -c)', async (t) => {
  const r = await execa('ruby', ['-c', 'Vagrantfile'], { cwd: ROOT, reject: false });
  t.is(r.exitCode, 0, r.stderr);
  t.regex(r.stdout, /Syntax OK/);
});

test('the VMs provision with scripts/provision-vm.sh, which runs the install script .ci/run runs', async (t) => {
  const vagrantfile = await read('Vagrantfile');
  t.regex(vagrantfile, /config\.vm\.box = "debian\/bookworm64"/);
  const machines = [...vagrantfile.matchAll(/config\.vm\.define "([^"]+)"/g)].map((m) => m[1]);
  t.deepEqual(machines, ['interpose', 'bypass-server', 'bypass-client']);
  // Every machine's first provisioner is provision-vm.sh; the main one runs the checks.
  const provisioners = [...vagrantfile.matchAll(/m\.vm\.provision "shell", path: "([^"]+)"(?:, args: \[([^\]]*)\])?/g)];
  t.deepEqual(
    provisioners.map((m) => m[1]),
    ['scripts/provision-vm.sh', 'scripts/provision-vm.sh', 'scripts/vm-bypass-server.sh', 'scripts/provision-vm.sh'],
  );
  t.is(provisioners[0]![2], '"--checks"');

  const provision = await read('scripts/provision-vm.sh');
  t.regex(provision, /^bash "\$src\/scripts\/install-system-deps\.sh"$/m);
  const ci = await read('.ci/run');
  t.regex(ci, /^bash scripts\/install-system-deps\.sh$/m);
  // The packages this project's own tests need are in the shared list.
  const deps = await read('scripts/install-system-deps.sh');
  for (const pkg of ['ruby', 'shellcheck', 'iptables', 'nftables']) t.regex(deps, new RegExp(`^\\s+${pkg}\\b`, 'm'));
});

test('the VM scripts parse, print usage on --help and are shellcheck-clean', async (t) => {
  const scripts = ['provision-vm.sh', 'vm-bypass-server.sh', 'vm-bypass-check.sh'];
  for (const s of scripts) {
    const path = `${ROOT}scripts/${s}`;
    t.is((await execa('bash', ['-n', path], { reject: false })).exitCode, 0, `bash -n ${s}`);
    const help = await execa('bash', [path, '--help'], { reject: false });
    t.is(help.exitCode, 0, `${s} --help: ${help.stderr}`);
    t.regex(help.stdout, new RegExp(`^usage: ${s.replace('.', '\\.')}`));
  }
  if (await has('shellcheck')) {
    const r = await execa('shellcheck', scripts.map((s) => `${ROOT}scripts/${s}`), { reject: false });
    t.is(r.exitCode, 0, r.stdout);
  } else {
    t.log('shellcheck not installed: lint skipped');
  }
});
