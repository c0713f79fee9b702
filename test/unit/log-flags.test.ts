/** pilot-agent's logging flags: pilot-agent's syntax accepted, the default scope's level and JSON honoured, bad values named. */
import test from 'ava';
import { logSettingsFromOptions } from '../../src/cli/log-flags.js';
import { applyCniMode } from '../../src/cli/cni-mode.js';
import type { RunOptions } from '../../src/config/intercept-config.js';

test('--log_output_level: a bare level, scope lists, `all`; later items win; other scopes accepted', (t) => {
  t.is(logSettingsFromOptions({}).level, 'info');
  t.is(logSettingsFromOptions({ log_output_level: 'debug' }).level, 'debug');
  t.is(logSettingsFromOptions({ log_output_level: 'default:warn' }).level, 'warn');
  t.is(logSettingsFromOptions({ log_output_level: 'ads:debug,default:error' }).level, 'error');
  t.is(logSettingsFromOptions({ log_output_level: 'default:error,all:none' }).level, 'none');
  t.is(logSettingsFromOptions({ log_output_level: 'xds:debug' }).level, 'info');
});

test('bad values name the flag, the value and what is accepted', (t) => {
  t.throws(() => logSettingsFromOptions({ log_output_level: 'default:loud' }), {
    message: /--log_output_level: "default:loud": expected LEVEL or SCOPE:LEVEL.*debug, info, warn, error, fatal, none.*"loud" is not a level/,
  });
  t.throws(() => logSettingsFromOptions({ log_output_level: 'a:b:c' }), { message: /more than one ":"/ });
  t.throws(() => logSettingsFromOptions({ log_stacktrace_level: 'default:sometimes' }), { message: /--log_stacktrace_level/ });
  t.throws(() => logSettingsFromOptions({ log_caller: 'de fault' }), { message: /--log_caller: "de fault"/ });
  t.throws(() => logSettingsFromOptions({ log_as_json: 'maybe' }), { message: /--log_as_json: "maybe": expected a boolean/ });
  t.throws(() => logSettingsFromOptions({ log_target: ['/nonexistent-dir/x.log'] }), { message: /--log_target: .*ENOENT/ });
});

test('--log_as_json as a bare flag or with a Go boolean; targets default to stderr', (t) => {
  t.true(logSettingsFromOptions({ log_as_json: true }).json);
  t.false(logSettingsFromOptions({ log_as_json: 'false' }).json);
  t.deepEqual(logSettingsFromOptions({}).targets, ['stderr']);
  t.deepEqual(logSettingsFromOptions({ log_target: ['stdout', 'stderr'] }).targets, ['stdout', 'stderr']);
});

test('--cni-mode: the pod namespace file becomes the xtables lock; without a namespace it says it does nothing', (t) => {
  const base = { cniMode: true } as RunOptions;
  const env: NodeJS.ProcessEnv = {};
  t.is(applyCniMode({ ...base, networkNamespace: '/proc/1/ns/net' }, env)?.level, 'debug');
  t.is(env.XTABLES_LOCKFILE, '/proc/1/ns/net');
  const none: NodeJS.ProcessEnv = {};
  t.is(applyCniMode(base, none)?.level, 'warn');
  t.is(none.XTABLES_LOCKFILE, undefined);
  t.is(applyCniMode({ ...base, cniMode: false, networkNamespace: 'x' }, none), undefined);
});
