/**
 * Parsers for the value types istio-iptables flags take. Each throws a ValidationError that
 * names the flag (or env var), the value and what is accepted.
 */
import { ValidationError } from '../errors/validation-error.js';
import { quotedItem } from '../errors/value-text.js';
import { parseCidr, type Cidr } from '../net/cidr.js';
import { portFromText } from '../net/port.js';

/** Splits a comma list the way istio does: empty items are dropped (`6000,7000,` is fine). */
export function splitList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function parsePort(value: string, source: string): number {
  const port = portFromText(value.trim());
  if (port === undefined) throw new ValidationError(source, value, 'a port number from 1 to 65535');
  return port;
}

export function parsePortList(value: string, source: string): number[] {
  const ports = splitList(value).map((item) => {
    try {
      return parsePort(item, source);
    } catch {
      throw new ValidationError(source, value, `a comma-separated list of ports from 1 to 65535 (bad item ${quotedItem(item)})`);
    }
  });
  return [...new Set(ports)];
}

export function parseCidrList(value: string, source: string): Cidr[] {
  return splitList(value).map((item) => {
    const c = parseCidr(item);
    if (!c) {
      throw new ValidationError(
        source,
        value,
        `a comma-separated list of IPv4 or IPv6 CIDRs such as 10.0.0.0/8 or 2001:db8::/32 (bad item ${quotedItem(item)})`,
      );
    }
    return c;
  });
}

/** Kernel rules for interface names (dev_valid_name), plus iptables' trailing `+` wildcard. */
export function parseInterfaceList(value: string, source: string): string[] {
  return splitList(value).map((name) => {
    const bad =
      name.length > 15 ||
      name === '.' ||
      name === '..' ||
      /[/:\s]/.test(name) ||
      !/^[\x21-\x7e]+$/.test(name) ||
      name.slice(0, -1).includes('+');
    if (bad) {
      throw new ValidationError(
        source,
        value,
        `a comma-separated list of interface names (1-15 printable characters, no "/", ":" or spaces; "+" only at the end) (bad item ${quotedItem(name)})`,
      );
    }
    return name;
  });
}

/** Go's strconv.ParseBool, which istio's flags and env vars use. */
export function parseBool(value: string, source: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False', ''].includes(value)) return false;
  throw new ValidationError(source, value, 'a boolean: true or false (also 1/0, t/f)');
}

/** An unsigned 32-bit integer, decimal or 0x-hex (marks, table ids). */
export function parseUint32(value: string, source: string, what: string, min = 0): number {
  const text = value.trim();
  let n = Number.NaN;
  if (/^\d+$/.test(text)) n = Number(text);
  else if (/^0x[0-9a-f]+$/i.test(text)) n = Number.parseInt(text.slice(2), 16);
  if (Number.isInteger(n) && n >= min && n <= 0xffffffff) return n;
  throw new ValidationError(source, value, `${what}: an integer from ${min} to 4294967295 (decimal or 0x-hex)`);
}

/**
 * A Go duration (`500ms`, `5s`, `1m30s`, `0.5s`; units h, m, s, ms, us/µs, ns) in
 * milliseconds, or undefined when `text` is not one, so each caller can name its flag or field
 * in the error. Istio's YAML durations (`3s`) are the same syntax.
 */
export function goDurationMs(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < trimmed.length) {
    part.lastIndex = pos;
    const m = part.exec(trimmed);
    if (!m) return undefined;
    total += Number(m[1]) * units[m[2]!]!;
    pos = part.lastIndex;
  }
  return total;
}

/** A positive Go duration → whole milliseconds. */
export function parseDurationMs(value: string, source: string): number {
  const text = value.trim();
  // '' and Go's bare '0' are durations, just not positive ones.
  const ms = text === '' || text === '0' ? 0 : goDurationMs(text);
  if (ms === undefined) throw new ValidationError(source, value, 'a duration such as 500ms, 5s or 1m30s');
  if (ms <= 0) throw new ValidationError(source, value, 'a positive duration such as 500ms, 5s or 1m30s');
  return Math.round(ms);
}
