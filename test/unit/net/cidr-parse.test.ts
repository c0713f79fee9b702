/**
 * parseCidr's shortcut for the common forms held to the general (ipaddr.js) path: on random
 * well-formed CIDRs of both families and on odd, malformed and borderline text, both give the
 * same answer (the same Cidr, or both reject).
 */
import test from 'ava';
import { parseCidr, parseCidrGeneral, type Cidr } from '../../../src/net/cidr.js';
import { SeededRandom } from '../../helpers/seeded-random.js';

const view = (c: Cidr | undefined) =>
  c === undefined ? undefined : { family: c.family, address: c.address.toNormalizedString(), kind: c.address.kind(), prefixLength: c.prefixLength, text: c.text };

const same = (t: import('ava').ExecutionContext, text: string) => t.deepEqual(view(parseCidr(text)), view(parseCidrGeneral(text)), JSON.stringify(text));

const ODD = [
  '', ' ', '/', '/24', '1.2.3.4/', '1.2.3.4//24', '1.2.3.4/2/3', '1.2.3.4/33', '1.2.3.4/0', '1.2.3.4/024', '1.2.3.4/1234',
  '0.0.0.0', '0.0.0.0/0', '255.255.255.255', '256.1.1.1', '01.2.3.4', '1.02.3.4', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3',
  '1.2.3.', '0x1.2.3.4', '1.2.3.4 ', ' 10.0.0.0/8 ', '1.2.3.-4', '1.2.3.4/-1', '1.2.3.4/+1', '1.2.3.4%eth0', '1000.2.3.4',
  '::', '::/0', '::1', '::/128', '::1/129', '1::', '1::/16', ':1::', '1:::2', '1::2::3', '::ffff:1.2.3.4', '::1.2.3.4',
  '::ffff:0102:0304', '0:0:0:0:0:0:0:1', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '1::2:3:4:5:6:7',
  '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1::3:4:5:6:7:8', '::1:2:3:4:5:6:7:8', '12345::', '00001::', 'abcd::EF01',
  'ABCD:ef01::/32', 'g::', '1:', ':1', ':', ':::', 'fe80::1%eth0', '2001:db8::/32', '2001:DB8::1/64', '2001:db8:0:0:1:0:0:1',
  '2001:0db8:0000:0000:0000:0000:0000:0001/128', '1::/1', '8000::/1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127',
  '0:0:0:0:0:ffff:1.2.3.4', '64:ff9b::192.0.2.1', '1.2.3.4:80', '[::1]', '::1/', '::1//1', '::1/1/2', '1:2:3:4:5:6:7:8/64',
];

test('the shortcut and the general path agree on odd, malformed and borderline text', (t) => {
  for (const text of ODD) same(t, text);
});

test('the shortcut and the general path agree on random CIDRs of both families', (t) => {
  const seed = Date.now() % 100_000;
  const rnd = new SeededRandom(seed);
  t.log(`seed ${seed}`);
  const hex = () => rnd.int(0, 0xffff).toString(16);
  for (let i = 0; i < 3000; i++) {
    const v4 = [0, 1, 2, 3].map(() => rnd.int(0, 255)).join('.');
    same(t, rnd.int(0, 3) === 0 ? v4 : `${v4}/${rnd.int(0, 34)}`);
    const words = Array.from({ length: 8 }, () => (rnd.int(0, 2) === 0 ? '0' : hex()));
    // Compress a random run of words to `::` now and then, and upper-case now and then.
    let v6 = words.join(':');
    if (rnd.int(0, 1) === 0) {
      const from = rnd.int(0, 7);
      const to = rnd.int(from, 8);
      v6 = `${words.slice(0, from).join(':')}::${words.slice(to).join(':')}`;
    }
    if (rnd.int(0, 4) === 0) v6 = v6.toUpperCase();
    same(t, rnd.int(0, 3) === 0 ? v6 : `${v6}/${rnd.int(0, 130)}`);
  }
});

test('a second "/" is rejected, not ignored (203.0.113.0/24/24 is a typo)', (t) => {
  for (const text of ['203.0.113.0/24/24', '203.0.113.0/24/', '203.0.113.0/24/abc', '2001:db8::/32/32', '::1/128/']) {
    t.is(parseCidr(text), undefined, text);
    t.is(parseCidrGeneral(text), undefined, text);
  }
});
