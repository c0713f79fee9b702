/**
 * `@FILE` lists for -i/-x: the file's items (commas, spaces, newlines, `#` comments) become the
 * value, the source names the file, and a missing file or a bare `@` is a ValidationError
 * naming the flag, the value and the reason. Only the CIDR list settings are read from files.
 */
import test from 'ava';
import { resolveSettings } from '../../../src/config/istio-flags.js';
import { expandListFiles, listFileItems } from '../../../src/config/list-files.js';
import { buildIstioOptions } from '../../../src/config/istio-options.js';
import { ValidationError } from '../../../src/errors/validation-error.js';
import { fakeSystem } from '../../helpers/fake-system.js';

const files: Record<string, string> = {
  '/cidrs/exclude': '# platform ranges\n10.96.0.0/12, 10.244.0.0/16\n\n  192.0.2.0/24 198.51.100.7 # a host\n2001:db8::/32,\n',
  '/cidrs/empty': '# nothing yet\n',
  '/cidrs/bad': '10.0.0.0/8\n10.0.0.0/33\n',
};
const read = (path: string) => {
  if (!(path in files)) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
  return files[path]!;
};

test('list files: items split on commas, spaces and newlines; comments dropped', (t) => {
  t.is(listFileItems(files['/cidrs/exclude']!), '10.96.0.0/12,10.244.0.0/16,192.0.2.0/24,198.51.100.7,2001:db8::/32');
  t.is(listFileItems(files['/cidrs/empty']!), '');
  t.is(listFileItems('*\n'), '*');
});

test('-x @FILE and $ISTIO_SERVICE_CIDR=@FILE read the file; the source names it', async (t) => {
  const settings = expandListFiles(resolveSettings({ istioServiceExcludeCidr: '@/cidrs/exclude', proxyUid: '1337' }, { ISTIO_SERVICE_CIDR: '@/cidrs/empty' }), read);
  t.deepEqual(settings.get('istio-service-exclude-cidr'), {
    value: '10.96.0.0/12,10.244.0.0/16,192.0.2.0/24,198.51.100.7,2001:db8::/32',
    source: '-x/--istio-service-exclude-cidr (from /cidrs/exclude)',
  });
  t.deepEqual(settings.get('istio-service-cidr'), { value: '', source: '$ISTIO_SERVICE_CIDR (from /cidrs/empty)' });
  const { config } = await buildIstioOptions(settings, fakeSystem());
  t.deepEqual(config.outboundExclude.map((c) => c.text), ['10.96.0.0/12', '10.244.0.0/16', '192.0.2.0/24', '198.51.100.7/32', '2001:db8::/32']);
});

test('a missing file, a bare @ and a bad item in a file are errors naming the flag, the file and the reason', (t) => {
  const missing = t.throws(() => expandListFiles(resolveSettings({ istioServiceExcludeCidr: '@/cidrs/none' }, {}), read), { instanceOf: ValidationError });
  t.is(missing!.message, 'invalid value for -x/--istio-service-exclude-cidr: "@/cidrs/none": expected @FILE naming a readable regular file of CIDRs, at most 16 MiB (/cidrs/none: ENOENT)');
  const bare = t.throws(() => expandListFiles(resolveSettings({ istioServiceCidr: '@' }, {}), read), { instanceOf: ValidationError });
  t.regex(bare!.message, /^invalid value for -i\/--istio-service-cidr: "@": expected a file path after "@"/);
  const bad = t.throws(() => expandListFiles(resolveSettings({ istioServiceExcludeCidr: '@/cidrs/bad' }, {}), read), { instanceOf: ValidationError });
  t.regex(bad!.message, /^invalid value for -x\/--istio-service-exclude-cidr \(\/cidrs\/bad line 2\): "10\.0\.0\.0\/33": expected one IPv4 or IPv6 CIDR/);
});

test('a long value is quoted by its start and length in errors', (t) => {
  const long = Array.from({ length: 500 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`).join(',') + ',nope';
  const err = new ValidationError('-x/--istio-service-exclude-cidr', long, 'CIDRs (bad item "nope")');
  t.true(err.message.length < 400);
  t.regex(err.message, /… \(\d+ characters\): expected CIDRs \(bad item "nope"\)$/);
});
