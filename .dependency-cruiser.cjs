/**
 * The architecture's import boundaries (docs/architecture.md), checked by dependency-cruiser
 * on every `npm test` (test/unit/import-rules.test.ts) and by `npm run lint:imports`.
 * A rule that fails names the importing file and what it imported; fix the import, not the rule.
 */

/** Every rule here is an error: a boundary that only warns is a boundary nobody keeps. */
function forbid(name, comment, from, to) {
  return { name, severity: 'error', comment, from, to };
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    forbid(
      'pure-layers-stay-pure',
      'rules/, config/, net/ and trace/ are pure (config → Ruleset → text, packet walks): they take ' +
      'what they need as arguments and never reach into the machine (kernel/), the commands (cli/) or the lab.',
      { path: '^src/(rules|config|net|trace)/' },
      { path: '^src/(kernel|cli|lab)/' },
    ),
    forbid(
      'kernel-does-not-call-up',
      'kernel/ is the machine door the commands and the lab use; it must not depend on them in turn ' +
      '(what it needs from them becomes an argument).',
      { path: '^src/kernel/' },
      { path: '^src/(cli|lab)/' },
    ),
    forbid(
      'only-kernel-spawns-processes',
      'Every external command goes through kernel/ (the Executor, or kernel/background-process.ts for ' +
      'long-running children), so it can be faked, recorded and pointed at a network namespace.',
      { path: '^src/', pathNot: '^src/kernel/' },
      { path: ['^(node:)?child_process$', '(^|/)node_modules/execa/'] },
    ),
    forbid(
      'native-addon-only-where-needed',
      'src/native.ts holds the netlink sender (sendNetfilterBatch, sendRouteRequest, dumpNetfilter, ' +
      'namespaceCookie) beside the socket options and the CIDR trie, in one module, so a module rule cannot ' +
      'tell the netlink part apart: it limits who may import native.ts at all — kernel/ (netlink), ' +
      'proxy/ (socket options, original destination), the trie, and the package entry point.',
      { path: '^src/', pathNot: ['^src/(kernel|proxy)/', '^src/net/cidr-trie\\.ts$', '^src/index\\.ts$', '^src/native\\.ts$'] },
      { path: '^src/native\\.ts$' },
    ),
    forbid(
      'proxy-does-not-import-cli',
      'proxy/ is a library the `interpose proxy` command starts; the command wires it, never the reverse.',
      { path: '^src/proxy/' },
      { path: '^src/cli/' },
    ),
    forbid(
      'no-circular',
      'An import cycle makes load order matter and the layers meaningless: break it by moving the shared piece down.',
      { path: '^src/' },
      { circular: true },
    ),
    forbid(
      'no-unresolvable',
      'An import the checker cannot resolve escapes every rule above.',
      { path: '^src/' },
      { couldNotResolve: true },
    ),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports couple layers too: count them.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
  },
};
