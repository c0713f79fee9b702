import { includeRanges } from './cidrs.js';
import type { DiscoveryResult } from './types.js';

/** Output formats of `interpose discover`. */
export const FORMATS = ['text', 'json', 'helm', 'annotation', 'flag'] as const;
export type Format = (typeof FORMATS)[number];

/**
 * The Helm/istioctl value. Helm's --set splits on commas, so the commas inside the one value
 * are escaped (\,), as Istio's own docs write it.
 */
export function helmSetting(ranges: readonly string[]): string {
  return `--set values.global.proxy.includeIPRanges="${ranges.join('\\,')}"`;
}

/** The pod annotation the sidecar injector reads, as a YAML line. */
export function annotationLine(ranges: readonly string[]): string {
  return `traffic.sidecar.istio.io/includeOutboundIPRanges: "${ranges.join(',')}"`;
}

/** interpose's (and istio-iptables') own flag. */
export function interposeFlag(ranges: readonly string[]): string {
  return `-i ${ranges.join(',')}`;
}

/** The whole result in the requested format, ending with a newline. */
export function formatDiscovery(result: DiscoveryResult, format: Format): string {
  const ranges = includeRanges(result.findings);
  switch (format) {
    case 'helm':
      return `${helmSetting(ranges)}\n`;
    case 'annotation':
      return `${annotationLine(ranges)}\n`;
    case 'flag':
      return `${interposeFlag(ranges)}\n`;
    case 'json':
      return `${JSON.stringify(
        {
          platform: result.platform,
          ...(result.detection ? { detection: result.detection } : {}),
          includeIPRanges: ranges,
          podCidrs: result.findings.filter((f) => f.role === 'pod').map((f) => f.cidr),
          serviceCidrs: result.findings.filter((f) => f.role === 'service').map((f) => f.cidr),
          findings: result.findings,
          notes: result.notes,
          helm: helmSetting(ranges),
          annotation: annotationLine(ranges),
          interposeFlag: interposeFlag(ranges),
        },
        null,
        2,
      )}\n`;
    case 'text':
      return formatText(result, ranges);
  }
}

function formatText(result: DiscoveryResult, ranges: readonly string[]): string {
  const lines: string[] = [`platform: ${result.platform}`];
  if (result.detection) lines.push(`  picked automatically: ${result.detection}`);
  const width = Math.max(18, ...result.findings.map((f) => f.cidr.length + 2));
  for (const role of ['pod', 'service'] as const) {
    const found = result.findings.filter((f) => f.role === role);
    lines.push(`${role} ranges:${found.length ? '' : ' none found'}`);
    for (const f of found) {
      lines.push(`  ${f.cidr.padEnd(width)}${f.assumedDefault ? 'DEFAULT, not read: ' : 'from '}${f.source}`);
    }
  }
  if (result.notes.length) {
    lines.push('notes:');
    for (const n of result.notes) lines.push(`  - ${n}`);
  }
  lines.push('');
  if (ranges.length === 0) {
    lines.push('no ranges found: nothing to suggest');
    return `${lines.join('\n')}\n`;
  }
  lines.push('intercept only these ranges (everything else bypasses the proxy):');
  lines.push(`  Helm / istioctl:  ${helmSetting(ranges)}`);
  lines.push(`  pod annotation:   ${annotationLine(ranges)}`);
  lines.push(`  interpose:        interpose istio-iptables ${interposeFlag(ranges)} …`);
  return `${lines.join('\n')}\n`;
}
