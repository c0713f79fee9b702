import test from 'ava';
import { HostTable, hostMatches } from '../../src/proxy/host-table.js';

test('exact names win over wildcards, the most specific wildcard over broader ones', (t) => {
  const table = new HostTable<string>();
  table.add('*', 'any');
  table.add('*.example.com', 'wild');
  table.add('*.api.example.com', 'api-wild');
  table.add('www.example.com', 'exact');
  t.is(table.lookup('www.example.com'), 'exact');
  t.is(table.lookup('WWW.Example.COM.'), 'exact');
  t.is(table.lookup('a.example.com'), 'wild');
  t.is(table.lookup('x.y.example.com'), 'wild');
  t.is(table.lookup('v1.api.example.com'), 'api-wild');
  t.is(table.lookup('example.com'), 'any', '*.example.com does not cover example.com itself');
  t.is(table.lookup('other.org'), 'any');
  t.is(table.size, 4);
});

test('without a catch-all, unknown names miss; the first value for a host is kept', (t) => {
  const table = new HostTable<number>();
  table.add('httpbin.org', 1);
  table.add('httpbin.org', 2);
  t.is(table.lookup('httpbin.org'), 1);
  t.is(table.lookup('xhttpbin.org'), undefined);
  t.is(table.lookup('org'), undefined);
});

test('hostMatches follows the same rules', (t) => {
  t.true(hostMatches('*.wikipedia.org', 'en.wikipedia.org'));
  t.false(hostMatches('*.wikipedia.org', 'wikipedia.org'));
  t.true(hostMatches('*', 'anything'));
  t.true(hostMatches('httpbin.org', 'HTTPBIN.org.'));
  t.false(hostMatches('httpbin.org', 'www.httpbin.org'));
});
