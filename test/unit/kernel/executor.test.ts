/**
 * SystemExecutor (node:child_process) keeps the Executor contract: exit status, stdout and
 * stderr as they came (final newline kept), stdin when given, CommandFailedError when the
 * command cannot start or times out. NamespacedExecutor enters the namespace with nsenter.
 */
import test from 'ava';
import { CommandFailedError } from '../../../src/errors/command-failed-error.js';
import { NamespacedExecutor, SystemExecutor, namespacePath, type CommandResult, type Executor } from '../../../src/kernel/executor.js';

test('a non-zero exit is a result, not an error; output is kept byte for byte', async (t) => {
  const r = await new SystemExecutor().run(['sh', '-c', 'printf "out\\n"; printf "err\\n" >&2; exit 3']);
  t.deepEqual(r, { exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
});

test('input goes to stdin; a command that ignores a large input still exits normally', async (t) => {
  const e = new SystemExecutor();
  t.is((await e.run(['cat'], { input: 'a\nb\n' })).stdout, 'a\nb\n');
  t.is((await e.run(['true'], { input: 'x'.repeat(4_000_000) })).exitCode, 0);
  t.is((await e.run(['sh', '-c', 'read -r x || echo no-stdin'])).stdout, 'no-stdin\n', 'without input, stdin is empty');
});

test('a command that cannot start, or runs past the timeout, throws CommandFailedError', async (t) => {
  const e = new SystemExecutor(300);
  const missing = await t.throwsAsync(e.run(['/nonexistent/interpose-test']), { instanceOf: CommandFailedError });
  t.regex(missing!.message, /could not run.*ENOENT/);
  const slow = await t.throwsAsync(e.run(['sleep', '5']), { instanceOf: CommandFailedError });
  t.regex(slow!.message, /timed out after 300 ms/);
});

class Recorder implements Executor {
  readonly argv: string[][] = [];
  run(argv: readonly string[]): Promise<CommandResult> {
    this.argv.push([...argv]);
    return Promise.resolve({ exitCode: 0, stdout: '', stderr: '' });
  }
}

test('NamespacedExecutor runs argv through nsenter --net, for names and for paths', async (t) => {
  const rec = new Recorder();
  await new NamespacedExecutor(rec, 'pod-a').run(['nft', 'list', 'tables']);
  await new NamespacedExecutor(rec, '/proc/42/ns/net').run(['ip', 'rule']);
  t.deepEqual(rec.argv, [
    ['nsenter', '--net=/run/netns/pod-a', '--', 'nft', 'list', 'tables'],
    ['nsenter', '--net=/proc/42/ns/net', '--', 'ip', 'rule'],
  ]);
  t.is(namespacePath('pod-b', (p) => p === '/var/run/netns/pod-b'), '/var/run/netns/pod-b', 'iproute2 built for /var/run/netns');
  t.is(namespacePath('pod-c', () => false), '/run/netns/pod-c');
});
