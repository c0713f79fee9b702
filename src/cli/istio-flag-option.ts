/** One istio-iptables flag as a commander Option; shared by istio-iptables, trace and verify. */
import { Option } from 'commander';
import type { FlagSpec } from '../config/istio-flags.js';

/** `-p, --envoy-port <port>` with its help, environment variables and default. */
export function istioFlagOption(spec: FlagSpec): Option {
  const names = `${spec.short ? `-${spec.short}, ` : ''}--${spec.long}`;
  const value = spec.kind === 'bool' ? ' [bool]' : ` <${spec.valueName ?? 'value'}>`;
  const env = spec.env.map((e) => `$${e}`).join(', ');
  const def = spec.defaultValue === '' ? '' : `; default ${spec.defaultValue}`;
  return new Option(names + value, `${spec.help} (env ${env}${def})`);
}
