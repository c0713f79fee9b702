/**
 * `-i @FILE` / `-x @FILE` read through readBoundedFile: a regular file up to the limit is read;
 * a larger one, a directory, a FIFO and /dev/zero are refused (promptly: a FIFO with no writer
 * and /dev/zero would otherwise never return); and an error about a bad item quotes that item
 * (shortened), the file and the line, never the rest of the file.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileRefusedError, readBoundedFile } from '../../../src/config/bounded-file.js';
import { resolveSettings } from '../../../src/config/istio-flags.js';
import { LIST_FILE_MAX_BYTES, expandListFiles } from '../../../src/config/list-files.js';
import { ValidationError } from '../../../src/errors/validation-error.js';

const dir = mkdtempSync(join(tmpdir(), 'interpose-bounded-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test('a regular file up to the limit is read whole; one byte more is refused, naming the limit', (t) => {
  const file = join(dir, 'exact');
  writeFileSync(file, 'x'.repeat(100_000));
  t.is(readBoundedFile(file, 100_000).length, 100_000);
  const err = t.throws(() => readBoundedFile(file, 99_999), { instanceOf: FileRefusedError });
  t.regex(err!.message, /larger than 99999 bytes/);
  t.regex(t.throws(() => readBoundedFile(file, 64 * 1024))!.message, /larger than 64 KiB/);
});

test('directories, FIFOs and character devices are refused without reading', (t) => {
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  t.regex(t.throws(() => readBoundedFile(fifo, 1024), { instanceOf: FileRefusedError })!.message, /not a regular file \(a FIFO\)/);
  t.regex(t.throws(() => readBoundedFile(dir, 1024), { instanceOf: FileRefusedError })!.message, /not a regular file \(a directory\)/);
  t.regex(t.throws(() => readBoundedFile('/dev/zero', 1024), { instanceOf: FileRefusedError })!.message, /not a regular file \(a character device\)/);
  t.is((t.throws(() => readBoundedFile(join(dir, 'none'), 1024)) as NodeJS.ErrnoException).code, 'ENOENT');
});

const expand = (value: string, long = 'istioServiceCidr') => () => expandListFiles(resolveSettings({ [long]: value }, {}), readBoundedFile);

test('-i @FILE: a refused file is an error naming the flag, the file, the reason and the limit', (t) => {
  const big = join(dir, 'big');
  writeFileSync(big, '10.0.0.0/8\n'.repeat(Math.ceil((LIST_FILE_MAX_BYTES + 1) / 11)));
  t.regex(t.throws(expand(`@${big}`), { instanceOf: ValidationError })!.message, new RegExp(`^invalid value for -i/--istio-service-cidr: "@${big}": .*at most 16 MiB \\(${big}: larger than 16 MiB`));
  t.regex(t.throws(expand('@/dev/zero', 'istioServiceExcludeCidr'))!.message, /^invalid value for -x\/--istio-service-exclude-cidr: .*\(\/dev\/zero: not a regular file \(a character device\)\)$/);
});

test('-i @FILE of something that is not a CIDR list quotes only the bad item, shortened, with its line', (t) => {
  const secret = join(dir, 'shadow');
  const hash = '$6$saltsalt$' + 'h'.repeat(86);
  writeFileSync(secret, `# a comment\n192.0.2.0/24\nroot:${hash}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n`);
  const err = t.throws(expand(`@${secret}`), { instanceOf: ValidationError })!;
  t.is(err.message.split('\n').length, 1);
  t.regex(err.message, new RegExp(`^invalid value for -i/--istio-service-cidr \\(${secret} line 3\\): "root:\\$6\\$saltsalt… \\(\\d+ characters\\)": expected one IPv4 or IPv6 CIDR`));
  t.false(err.message.includes('daemon'), 'no other line');
  t.false(err.message.includes('hhhhhhhh'), 'not the whole bad item');
  // A short bad item is quoted whole; "*" is only a whole value of -i, never an item.
  writeFileSync(secret, '192.0.2.0/24, 203.0.113.0/24/24\n');
  t.regex(t.throws(expand(`@${secret}`))!.message, /line 1\): "203\.0\.113\.0\/24\/24"/);
  writeFileSync(secret, '192.0.2.0/24\n*\n');
  t.regex(t.throws(expand(`@${secret}`))!.message, /line 2\): "\*"/);
  writeFileSync(secret, '*\n');
  t.is(expand(`@${secret}`)().get('istio-service-cidr')!.value, '*');
});
