import { Command, Option } from 'commander';
import { DEFAULT_SOCKET } from '../cni/cni-server.js';
import { install, uninstall } from '../cni/install/installer.js';
import { DEFAULT_EXCLUDED_NAMESPACES, LOG_LEVELS } from '../cni/plugin-config.js';
import { ValidationError } from '../errors/index.js';
import { info } from './log.js';

const DEFAULT_BIN_DIR = '/opt/cni/bin';
const DEFAULT_CONF_DIR = '/etc/cni/net.d';
const DEFAULT_SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

interface InstallFlags {
  cniBinDir: string;
  cniConfDir: string;
  serviceAccountDir: string;
  logFile: string;
  logLevel: string;
  excludeNamespaces: string;
  nativeNftables?: boolean;
  copyNode?: boolean;
  watch?: boolean;
  socket: string;
}

const dirOptions = () => [
  new Option('--cni-bin-dir <dir>', 'the CNI bin dir the runtime executes plugins from').default(DEFAULT_BIN_DIR),
  new Option('--cni-conf-dir <dir>', 'the CNI conf dir holding the primary network configuration').default(DEFAULT_CONF_DIR),
];

/**
 * `interpose cni install|uninstall`: puts interpose-cni into a node's CNI configuration (what
 * the DaemonSet in deploy/kubernetes/cni/ runs) and takes it out again. docs/cni.md.
 */
export function cniCommand(): Command {
  const installCmd = new Command('install')
    .description(
      'copy interpose-cni into the CNI bin dir, write its kubeconfig from the service account and append it to the ' +
        'primary network configuration (a .conf becomes a .conflist); with --watch, put it back whenever that file is rewritten',
    )
    .option('--service-account-dir <dir>', "where the pod's service account token, ca.crt and namespace are", DEFAULT_SA_DIR)
    .option('--log-file <path>', 'the log_file of the plugin entry (a host path)', '/var/log/interpose-cni.log')
    .option('--log-level <level>', `the plugin_log_level of the plugin entry: ${LOG_LEVELS.join(', ')}`, 'info')
    .option('--exclude-namespaces <list>', 'comma-separated exclude_namespaces of the plugin entry', DEFAULT_EXCLUDED_NAMESPACES.join(','))
    .option('--native-nftables', 'set native_nftables in the plugin entry (interpose\'s nftables backend instead of iptables)')
    .option('--copy-node', 'copy this node executable next to the plugin (for hosts without Node.js 20); else the launcher runs `node` from PATH')
    .option('--watch', 'keep running: re-insert interpose-cni when the primary configuration is rewritten, and serve the shim\'s CNI calls on --socket (until SIGTERM)')
    .option('--socket <path>', 'the unix socket the installed shim forwards CNI calls to and --watch serves them on (directory 0700, socket 0600)', DEFAULT_SOCKET)
    .action(async (flags: InstallFlags) => {
      if (!(LOG_LEVELS as readonly string[]).includes(flags.logLevel)) throw new ValidationError('--log-level', flags.logLevel, `one of ${LOG_LEVELS.join(', ')}`);
      const excludeNamespaces = flags.excludeNamespaces.split(',').map((s) => s.trim()).filter(Boolean);
      if (excludeNamespaces.some((n) => !/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n))) {
        throw new ValidationError('--exclude-namespaces', flags.excludeNamespaces, 'comma-separated Kubernetes namespace names');
      }
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGTERM', stop).once('SIGINT', stop);
      await install(
        {
          binDir: flags.cniBinDir,
          confDir: flags.cniConfDir,
          serviceAccountDir: flags.serviceAccountDir,
          logFile: flags.logFile,
          logLevel: flags.logLevel,
          excludeNamespaces,
          nativeNftables: flags.nativeNftables === true,
          ...(flags.copyNode ? { copyNode: process.execPath } : {}),
          socket: flags.socket,
          env: process.env,
          log: info,
        },
        flags.watch ? { debounceMs: 200, recheckMs: 30_000, maxReinsertsPerMinute: 30, signal: controller.signal, serve: true } : undefined,
      );
      process.off('SIGTERM', stop).off('SIGINT', stop);
    });
  for (const o of dirOptions()) installCmd.addOption(o);

  const uninstallCmd = new Command('uninstall')
    .description('take out exactly what install put in: the plugin entry (restoring the original file byte for byte), the kubeconfig and the plugin files (the shim and interpose-cni.d/)')
    .action((flags: { cniBinDir: string; cniConfDir: string }) => {
      uninstall({ binDir: flags.cniBinDir, confDir: flags.cniConfDir, log: info });
    });
  for (const o of dirOptions()) uninstallCmd.addOption(o);

  return new Command('cni')
    .summary('install or uninstall the interpose-cni CNI plugin on a node')
    .description('install or uninstall interpose-cni, the chained CNI plugin that writes pod rules without an init container (docs/cni.md)')
    .addCommand(installCmd)
    .addCommand(uninstallCmd);
}
