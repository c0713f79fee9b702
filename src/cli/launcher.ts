#!/usr/bin/env node
/**
 * The `interpose` executable (the package's bin), run only as bundled into dist/interpose.js
 * (scripts/bundle-cli.mjs), next to the two programs it chooses between: an init container's
 * `interpose istio-iptables` loads dist/interpose-istio-iptables-main.js, one self-contained
 * file (start-up is what every pod waits for: bench/startup.ts); every other command loads
 * dist/interpose-main.js, the CLI split into chunks so each command loads only its own.
 */
const program = process.argv[2] === 'istio-iptables' ? './interpose-istio-iptables-main.js' : './interpose-main.js';
await import(new URL(program, import.meta.url).href);
