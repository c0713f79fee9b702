// `interpose istio-iptables` on its own: what an init container runs, bundled with everything
// it uses into one file (dist/interpose-istio-iptables-main.js, see launcher.ts), so Node reads
// and compiles one module where the split CLI takes about twenty (bench/startup.ts). The entry
// is commands.ts's, with the command imported statically so the bundle holds it.
import { istioIptablesCommand } from './istio-iptables.js';
import { runProgram } from './program.js';

await runProgram([{ name: 'istio-iptables', load: async () => istioIptablesCommand(), exitWhenDone: true }]);
