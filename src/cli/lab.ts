/** `interpose lab [egress|gateway|tls-origination]`: the seeds, end to end, in network namespaces. */
import { Command, Option } from 'commander';
import { ValidationError } from '../errors/validation-error.js';

export function labCommand(): Command {
  return new Command('lab')
    .summary('walk through Istio\'s egress seeds with interpose in network namespaces (needs root)')
    .description(
      'Builds a pod and a world network namespace (stand-ins for httpbin.org and www.google.com on ' +
        'documentation addresses, a test CA the pod trusts), installs interpose\'s rules in the pod, runs ' +
        '`interpose proxy` there as uid 1337, and walks through a seed step by step: each command, what came ' +
        'back, the access-log lines, and a final table of expected vs observed. Exit 1 if any step differs. ' +
        'Everything it creates is removed when it ends, Ctrl-C included.',
    )
    .argument('[seed]', 'egress (Accessing External Services, the default), gateway (egress gateway) or tls-origination (Egress TLS Origination)', 'egress')
    .option('--json', 'print one JSON document with every step (progress goes to stderr)')
    .option('--keep', 'after the steps, keep the namespaces and processes running until Ctrl-C')
    .addOption(new Option('--no-color', 'plain output even on a terminal'))
    .action(async (seed: string, opts: { json?: boolean; keep?: boolean; color?: boolean }) => {
      if (seed !== 'egress' && seed !== 'gateway' && seed !== 'tls-origination') {
        throw new ValidationError('[seed]', seed, 'egress, gateway or tls-origination');
      }
      const { runLab } = await import('../lab/lab-runner.js');
      const color = opts.color !== false && !opts.json && process.stdout.isTTY === true && !process.env.NO_COLOR;
      process.exitCode = await runLab({ seed, json: opts.json === true, keep: opts.keep === true, color });
    });
}
