import { Command } from 'commander';
import { annotationsToFlags } from '../config/annotations.js';
import { createReadStream } from 'node:fs';
import { FileRefusedError, formatBytes } from '../config/bounded-file.js';
import { readBoundedStream } from '../config/bounded-stream.js';
import { podAnnotationsFromManifest } from '../config/pod-manifest.js';
import { ValidationError } from '../errors/index.js';
import { helpText } from './help-layout.js';

const FORMATS = ['args', 'json', 'shell'] as const;
type Format = (typeof FORMATS)[number];

interface Flags {
  annotation: string[];
  format: string;
  name?: string;
}

/**
 * `interpose annotations-to-flags`: a pod's traffic.sidecar.istio.io/* annotations as the
 * istio-iptables arguments Istio's sidecar injector would give istio-init.
 */
export function annotationsToFlagsCommand(): Command {
  return new Command('annotations-to-flags')
    .summary("a pod's traffic.sidecar.istio.io/* annotations as istio-iptables flags")
    .description(
      "turn a pod's traffic.sidecar.istio.io/* annotations into the istio-iptables flags the " +
        'sidecar injector gives istio-init (read from a manifest file, "-" for stdin, or --annotation)',
    )
    .argument('[manifest]', 'Pod or workload manifest, YAML or JSON ("-" reads stdin)')
    .option('-a, --annotation <key=value>', 'an annotation (repeatable); wins over the manifest', collect, [])
    .option('--name <name>', 'the workload to read when the manifest holds several')
    .option('--format <format>', `${FORMATS.join(' | ')}: one argument per line, a JSON array, or one shell-quoted line`, 'args')
    .addHelpText(
      'after',
      helpText(
        '\nExamples:\n' +
          '  interpose annotations-to-flags deploy/kubernetes/pod-annotations.yaml\n' +
          '  kubectl get pod web -o yaml | interpose annotations-to-flags - --format shell\n' +
          '  interpose annotations-to-flags \\\n' +
          '      -a traffic.sidecar.istio.io/includeOutboundIPRanges=10.96.0.0/12\n',
      ),
    )
    .action(async (manifest: string | undefined, flags: Flags) => {
      if (!FORMATS.includes(flags.format as Format)) {
        throw new ValidationError('--format', flags.format, `one of ${FORMATS.join(', ')}`);
      }
      if (manifest === undefined && flags.annotation.length === 0) {
        throw new ValidationError('[manifest]', '(none)', 'a manifest file, "-" for stdin, or at least one --annotation key=value');
      }
      let annotations: Record<string, string> = {};
      if (manifest !== undefined) {
        const what = manifest === '-' ? 'stdin' : manifest;
        const text = await readInput(manifest);
        annotations = { ...podAnnotationsFromManifest(text, what, flags.name).annotations };
      }
      for (const pair of flags.annotation) {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new ValidationError('--annotation', pair, 'key=value, e.g. traffic.sidecar.istio.io/excludeOutboundPorts=5432');
        annotations[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      const { argv, notes } = annotationsToFlags(annotations);
      for (const n of notes) process.stderr.write(`interpose: ${n}\n`);
      process.stdout.write(render(argv, flags.format as Format));
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * The largest manifest read (file or stdin). A pod is a few KiB; `kubectl get deploy -A -o yaml`
 * of a large cluster a few MiB. /dev/zero or an endless stdin is refused once past it. A file is
 * read as a stream, like stdin, so `<(kubectl get pod web -o yaml)` (a pipe) works too.
 */
export const MANIFEST_MAX_BYTES = 16 * 1024 * 1024;

async function readInput(path: string): Promise<string> {
  try {
    return await readBoundedStream(path === '-' ? process.stdin : createReadStream(path), MANIFEST_MAX_BYTES);
  } catch (cause) {
    const reason = cause instanceof FileRefusedError ? cause.reason : ((cause as NodeJS.ErrnoException).code ?? String(cause));
    const [flag, accepted] = path === '-' ? ['stdin', 'a manifest on stdin'] : ['[manifest]', 'a readable file'];
    throw new ValidationError(flag, path, `${accepted} of at most ${formatBytes(MANIFEST_MAX_BYTES)} (${reason})`);
  }
}

/** The argv in the chosen format; empty argv prints nothing (args) or [] (json). */
export function render(argv: readonly string[], format: Format): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(argv)}\n`;
    case 'shell':
      return argv.length ? `${argv.map(shellQuote).join(' ')}\n` : '';
    case 'args':
      return argv.map((a) => `${a}\n`).join('');
  }
}

/** POSIX shell quoting: bare when safe, otherwise single quotes ('' for the empty string). */
export function shellQuote(arg: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}
