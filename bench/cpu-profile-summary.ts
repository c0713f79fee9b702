/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by file, as shares of
 * the samples, so a profile of the proxy under bench:http says where its time goes.
 *
 *   npx tsx bench/cpu-profile-summary.ts FILE.cpuprofile [TOP]
 */
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topText] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: cpu-profile-summary FILE.cpuprofile [TOP]\n');
  process.exit(2);
}
const top = Number(topText ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);

const shortUrl = (url: string) => url.replace(/^file:\/\/.*?\/(src|dist|node_modules)\//, '$1/').replace(/^node:/, 'node:');
const fnKey = (n: Node) => `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
const fileKey = (n: Node) => shortUrl(n.callFrame.url) || `(${n.callFrame.functionName})`;

function table(title: string, key: (n: Node) => string): void {
  const sums = new Map<string, number>();
  for (const [id, t] of self) {
    const k = key(byId.get(id)!);
    sums.set(k, (sums.get(k) ?? 0) + t);
  }
  console.log(`\n${title} (self time, ${(total / 1e6).toFixed(2)} s sampled)`);
  for (const [k, t] of [...sums].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${k}`);
  }
}
table('by file', fileKey);
table('by function', fnKey);
