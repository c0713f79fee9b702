/**
 * The documentation follows the code: every flag of every command is named on that command's
 * page in docs/ (istio-iptables' environment variables too), the front page stays a front page,
 * and every relative link and anchor in README.md and docs/ leads somewhere.
 */
import test from 'ava';
import type { Command, Option } from 'commander';
import GithubSlugger from 'github-slugger';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { commands } from '../../src/cli/commands.js';
import { ISTIO_ENV_ONLY, ISTIO_FLAGS } from '../../src/config/istio-flags.js';
import { istioIptablesCommand } from '../../src/cli/istio-iptables.js';

const root = join(import.meta.dirname, '..', '..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

/** `text` names `flag` as a whole word: `--uid` is not found in `--uid-owner`, nor `-p` in `-pp`. */
function names(text: string, flag: string): boolean {
  const escaped = flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![\\w-])${escaped}(?![\\w-])`).test(text);
}

/** Where each command's flags are documented. A new command needs a line here and a page. */
const PAGE_OF_COMMAND: Record<string, string> = {
  lab: 'docs/lab.md',
  'istio-iptables': 'docs/istio-iptables.md',
  discover: 'docs/discovery.md',
  'annotations-to-flags': 'docs/annotations-to-flags.md',
  proxy: 'docs/proxy.md',
  trace: 'docs/trace-and-verify.md',
  verify: 'docs/trace-and-verify.md',
  cni: 'docs/cni.md',
};

/** A command's options and its subcommands' (`interpose cni install --watch`). */
const optionsOf = (cmd: Command): Option[] => [...cmd.options, ...cmd.commands.flatMap(optionsOf)];

/** trace and verify take istio-iptables' flags too; those are documented on its page, linked from theirs. */
const ISTIO_LONG_FLAGS = new Set(ISTIO_FLAGS.map((f) => `--${f.long}`));

test('docs/istio-iptables.md documents every istio-iptables flag and environment variable', (t) => {
  const page = read('docs/istio-iptables.md');
  for (const f of ISTIO_FLAGS) {
    t.true(names(page, `--${f.long}`), `docs/istio-iptables.md lacks --${f.long}`);
    if (f.short) t.true(names(page, `-${f.short}, --${f.long}`), `docs/istio-iptables.md lacks -${f.short}, --${f.long}`);
    for (const e of f.env) t.true(page.includes(`\`${e}\``), `docs/istio-iptables.md lacks ${e}`);
  }
  for (const f of ISTIO_ENV_ONLY) t.true(page.includes(`\`${f.env[0]!}\``), `docs/istio-iptables.md lacks ${f.env[0]}`);
});

for (const entry of commands) {
  test(`the page of interpose ${entry.name} documents every one of its flags`, async (t) => {
    const file = PAGE_OF_COMMAND[entry.name];
    if (!file) return t.fail(`interpose ${entry.name} has no page: add it to PAGE_OF_COMMAND and write it in docs/`);
    const page = read(file);
    const cmd = await entry.load();
    t.true(optionsOf(cmd).length > 0);
    for (const o of optionsOf(cmd)) {
      const long = o.long!;
      if (entry.name !== 'istio-iptables' && ISTIO_LONG_FLAGS.has(long)) continue;
      t.true(names(page, long), `${file} lacks ${long} (interpose ${entry.name})`);
      if (o.short) t.true(names(page, `${o.short}, ${long}`), `${file} lacks ${o.short}, ${long} (interpose ${entry.name})`);
    }
    if (optionsOf(cmd).some((o) => entry.name !== 'istio-iptables' && ISTIO_LONG_FLAGS.has(o.long!))) {
      t.true(page.includes('](istio-iptables.md'), `${file} takes istio-iptables flags but does not link to docs/istio-iptables.md`);
    }
  });
}

test('--help documents every flag, its short letter and its environment variables', (t) => {
  const help = istioIptablesCommand().helpInformation();
  for (const f of ISTIO_FLAGS) {
    t.true(help.includes(`--${f.long}`), `help lacks --${f.long}`);
    if (f.short) t.true(help.includes(`-${f.short}, --${f.long}`), `help lacks -${f.short}`);
    for (const e of f.env) t.true(help.includes(`$${e}`), `help lacks $${e}`);
  }
});

test('README.md is a front page: at most 250 lines, linking to the docs index', (t) => {
  const readme = read('README.md');
  const lines = readme.split('\n').length - (readme.endsWith('\n') ? 1 : 0);
  t.true(lines <= 250, `README.md has ${lines} lines; move reference text to docs/`);
  t.true(readme.includes('](docs/README.md)'));
});

const markdownFiles = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The anchors GitHub gives a page's headings (outside code blocks). */
function anchorsOf(markdown: string): Set<string> {
  const slugger = new GithubSlugger();
  const anchors = new Set<string>();
  let inCode = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) inCode = !inCode;
    const heading = !inCode && /^#{1,6} (.+)$/.exec(line);
    if (heading) anchors.add(slugger.slug(heading[1]!.replace(/`/g, '')));
  }
  return anchors;
}

/** Inline links `[text](target)` outside code blocks and code spans. */
function linksOf(markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
}

test('every docs page is listed in docs/README.md', (t) => {
  const index = read('docs/README.md');
  for (const file of markdownFiles.filter((f) => f.startsWith('docs/') && f !== 'docs/README.md')) {
    t.true(index.includes(`](${file.slice('docs/'.length)}`), `docs/README.md does not link to ${file}`);
  }
});

test('every relative link and anchor in README.md and docs/ resolves', (t) => {
  let checked = 0;
  for (const file of markdownFiles) {
    for (const link of linksOf(read(file))) {
      if (/^[a-z]+:/i.test(link)) continue; // https:, mailto: — not checked offline
      const [path, anchor] = link.split('#') as [string, string | undefined];
      const target = path === '' ? join(root, file) : resolve(root, dirname(file), path);
      const name = relative(root, target);
      checked++;
      if (!existsSync(target)) {
        t.fail(`${file}: link to ${link}: ${name} does not exist`);
        continue;
      }
      if (anchor !== undefined && statSync(target).isFile() && target.endsWith('.md')) {
        t.true(anchorsOf(readFileSync(target, 'utf8')).has(anchor), `${file}: link to ${link}: ${name} has no heading #${anchor}`);
      }
    }
  }
  t.true(checked > 30, `only ${checked} links found: is the link pattern still right?`);
});
