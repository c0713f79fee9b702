/**
 * The architecture's import boundaries (docs/architecture.md), checked by dependency-cruiser
 * on every `npm test` (test/unit/import-rules.test.ts) and by `npm run lint:imports`.
 * A rule that fails names the importing file and what it imported; fix the import, not the rule.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'pure-layers-stay-pure',
      severity: 'error',
      comment:
        'rules/, config/, net/ and trace/ are pure (config → Ruleset → text, packet walks): they take ' +
        'what they need as arguments and never reach into the machine (kernel/), the commands (cli/) or the lab.',
      from: { path: '^src/(rules|config|net|trace)/' },
      to: { path: '^src/(kernel|cli|lab)/' },
    },
    {
      name: 'kernel-does-not-call-up',
      severity: 'error',
      comment:
        'kernel/ is the machine door the commands and the lab use; it must not depend on them in turn ' +
        '(what it needs from them becomes an argument).',
      from: { path: '^src/kernel/' },
      to: { path: '^src/(cli|lab)/' },
    },
    {
      name: 'only-kernel-spawns-processes',
      severity: 'error',
      comment:
        'Every external command goes through kernel/ (the Executor, or kernel/background-process.ts for ' +
        'long-running children), so it can be faked, recorded and pointed at a network namespace.',
      from: { path: '^src/', pathNot: '^src/kernel/' },
      to: { path: ['^(node:)?child_process$', '(^|/)node_modules/execa/'] },
    },
    {
      name: 'native-addon-only-where-needed',
      severity: 'error',
      comment:
        'src/native.ts holds the netlink sender (sendNetfilterBatch, sendRouteRequest, dumpNetfilter, ' +
        'namespaceCookie) beside the socket options and the CIDR trie, in one module, so a module rule cannot ' +
        'tell the netlink part apart: it limits who may import native.ts at all — kernel/ (netlink), ' +
        'proxy/ (socket options, original destination), the trie, and the package entry point.',
      from: { path: '^src/', pathNot: ['^src/(kernel|proxy)/', '^src/net/cidr-trie\\.ts$', '^src/index\\.ts$', '^src/native\\.ts$'] },
      to: { path: '^src/native\\.ts$' },
    },
    {
      name: 'proxy-does-not-import-cli',
      severity: 'error',
      comment: 'proxy/ is a library the `interpose proxy` command starts; the command wires it, never the reverse.',
      from: { path: '^src/proxy/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle makes load order matter and the layers meaningless: break it by moving the shared piece down.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      comment: 'An import the checker cannot resolve escapes every rule above.',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
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
