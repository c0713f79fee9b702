// A stand-in upstream nameserver for the DNS proxy tests, on ADDRESS port 53, UDP and TCP:
//   www.example.org  A 192.0.2.80 (TTL 60)
//   big.example.org  30 A records over TCP (about 1 KB: over 512 bytes, under 1232); over UDP only a truncated (TC) reply
//   anything else    NXDOMAIN with an SOA (TTL 5)
// Prints "ready" once bound and "query PROTO NAME TYPE" for every query it gets, so a test
// can tell what reached the upstream and what the proxy answered or cached itself.
// Usage: node dns-stand-in.mjs ADDRESS
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import dnsPacket from 'dns-packet';

const address = process.argv[2];
const SOA = { type: 'SOA', name: 'example.org', ttl: 5, data: { mname: 'ns.example.org', rname: 'hostmaster.example.org', serial: 1, refresh: 60, retry: 60, expire: 60, minimum: 5 } };

function reply(query, protocol) {
  const q = query.questions[0];
  const name = q.name.toLowerCase();
  process.stdout.write(`query ${protocol} ${name} ${q.type}\n`);
  const base = { type: 'response', id: query.id, flags: dnsPacket.RECURSION_AVAILABLE | dnsPacket.RECURSION_DESIRED, questions: [q] };
  if (name === 'www.example.org') {
    return q.type === 'A'
      ? { ...base, answers: [{ type: 'A', name: q.name, ttl: 60, data: '192.0.2.80' }] }
      : { ...base, authorities: [SOA] };
  }
  if (name === 'big.example.org' && q.type === 'A') {
    if (protocol === 'udp') return { ...base, flags: base.flags | dnsPacket.TRUNCATED_RESPONSE };
    return { ...base, answers: Array.from({ length: 30 }, (_, i) => ({ type: 'A', name: q.name, ttl: 60, data: `192.0.2.${100 + i}` })) };
  }
  return { ...base, flags: base.flags | 3, authorities: [SOA] };
}

const udp = createSocket('udp4');
udp.on('message', (msg, peer) => {
  try {
    udp.send(dnsPacket.encode(reply(dnsPacket.decode(msg), 'udp')), peer.port, peer.address);
  } catch {
    // not DNS: ignore
  }
});

const tcp = createServer((socket) => {
  let buffered = Buffer.alloc(0);
  socket.on('error', () => {});
  socket.on('data', (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
      const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
      buffered = buffered.subarray(2 + msg.length);
      try {
        socket.write(dnsPacket.streamEncode(reply(dnsPacket.decode(msg), 'tcp')));
      } catch {
        socket.destroy();
      }
    }
  });
});

udp.bind(53, address, () => tcp.listen(53, address, () => process.stdout.write('ready\n')));
