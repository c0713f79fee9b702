/**
 * Parses Istio/protobuf durations ("3s", "0.5s", "100ms", "1m", "1h30m") into milliseconds.
 * Returns undefined for anything else so the caller can name the field in its error.
 */
export function parseDurationMs(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  const unitMs: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
  const part = /(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)/y;
  let total = 0;
  let index = 0;
  while (index < trimmed.length) {
    part.lastIndex = index;
    const m = part.exec(trimmed);
    if (!m) return undefined;
    total += Number(m[1]) * unitMs[m[2]!]!;
    index = part.lastIndex;
  }
  return total;
}
