/**
 * Tests and benchmarks run nftables' `nft` by absolute path (findNft), never by name. Under npm
 * and npx PATH starts with node_modules/.bin, where @vercel/nft (a build-tool dependency)
 * installs an unrelated `nft`: `ip netns exec NS nft list ruleset` then exits 0 printing
 * nothing, and a test comparing rulesets compares two empty strings, or fails only under npm.
 */
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const self = fileURLToPath(import.meta.url);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : sources(path);
    return /\.(ts|mjs|js)$/.test(name) ? [path] : [];
  });
}

/** A process started as `nft …`: an argv array, execa's file, or a shell line beginning with it. */
const BARE_NFT = /(?:exec|execa|spawn|execFile|execFileSync|spawnSync)\(\s*(?:\[\s*)?['"`]nft(?:['"`]|\s)/;

test('the node_modules/.bin `nft` shadows nftables’ one under npm, so nothing runs `nft` by name', (t) => {
  const offenders = ['test', 'bench'].flatMap((dir) => sources(join(repo, dir))).filter((f) => f !== self).flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .map((line, i) => ({ line, where: `${relative(repo, file)}:${i + 1}` }))
      .filter(({ line }) => BARE_NFT.test(line))
      .map(({ where, line }) => `${where}: ${line.trim()}`),
  );
  t.deepEqual(offenders, [], 'use findNft() from src/kernel/nft-binary.linux.ts');
});

test('the check recognises the forms a bare nft takes', (t) => {
  for (const bad of ["await ns.exec(['nft', 'list', 'ruleset']);", "execa('nft', ['-f', '-'])", 'spawn("nft list tables")']) t.regex(bad, BARE_NFT, bad);
  for (const good of ["await ns.exec([findNft(), 'list', 'ruleset']);", "execa(NFT, ['-f', '-'])", "rec.run(['nft', 'list'])"]) t.notRegex(good, BARE_NFT, good);
});
