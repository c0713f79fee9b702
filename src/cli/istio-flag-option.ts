/** One istio-iptables flag as a commander Option; shared by istio-iptables, trace and verify. */
import { Option, type Command } from 'commander';
import { ISTIO_FLAGS, camel, flagDisplay, type FlagSpec } from '../config/istio-flags.js';
import { ValidationError } from '../errors/validation-error.js';

/** `-p, --envoy-port <port>` with its help, environment variables and default. */
export function istioFlagOption(spec: FlagSpec): Option {
  const names = `${spec.short ? `-${spec.short}, ` : ''}--${spec.long}`;
  const value = spec.kind === 'bool' ? ' [bool]' : ` <${spec.valueName ?? 'value'}>`;
  const env = spec.env.map((e) => `$${e}`).join(', ');
  const def = spec.defaultValue === '' ? '' : `; default ${spec.defaultValue}`;
  return new Option(names + value, `${spec.help} (env ${env}${def})`);
}

/**
 * Every istio-iptables flag on `cmd`. A command that only reads (`trace`, `verify`) lists no
 * apply-only flag in its help and refuses one given on its command line, naming it: accepting
 * `verify --cleanup-only` and doing nothing with it would look as if it meant something.
 * (Their environment variables are not refused: an init container's environment carries them
 * for istio-iptables, and a command that reads does not look at them.)
 */
export function addIstioFlagOptions(cmd: Command, use: 'apply' | 'read'): Command {
  for (const spec of ISTIO_FLAGS) {
    const option = istioFlagOption(spec);
    cmd.addOption(use === 'read' && spec.applyOnly ? option.hideHelp() : option);
  }
  if (use === 'read') {
    cmd.hook('preAction', (hooked) => {
      const opts = hooked.opts();
      const given = ISTIO_FLAGS.find((spec) => spec.applyOnly && opts[camel(spec.long)] !== undefined);
      if (given) {
        throw new ValidationError(
          flagDisplay(given),
          opts[camel(given.long)],
          `no ${flagDisplay(given)} with \`interpose ${hooked.name()}\`, which changes nothing; it belongs to \`interpose istio-iptables\``,
        );
      }
    });
  }
  return cmd;
}
