// Connects to each target and reports the first line it receives (or the error).
// Usage: node probe-client.mjs '[["192.0.2.7",80],["2001:db8:100::9",443]]'
// Prints a JSON array of answers in the same order.
import net from 'node:net';

const targets = JSON.parse(process.argv[2]);

function probe([host, port]) {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port, timeout: 3000 });
    let data = '';
    sock.on('data', (d) => (data += d));
    sock.on('end', () => resolve(data.trim()));
    sock.on('timeout', () => {
      sock.destroy();
      resolve('error:timeout');
    });
    sock.on('error', (e) => resolve(`error:${e.code}`));
  });
}

const results = await Promise.all(targets.map(probe));
process.stdout.write(JSON.stringify(results) + '\n');
