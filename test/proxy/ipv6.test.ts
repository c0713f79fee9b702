/**
 * The same interception over IPv6 (2001:db8::/32): ip6tables rules from istio-iptables, the
 * original destination through IP6T_SO_ORIGINAL_DST, passthrough and a ServiceEntry by SNI.
 */
import { writeFileSync } from 'node:fs';
import { kernelTest } from '../helpers/kernel.js';
import { World } from '../../src/lab/world/world.js';
import { GOOGLE, LINK } from '../../src/lab/world/addresses.js';
import { ProxyProcess } from '../../src/lab/world/proxy-process.js';
import { installIstioRules } from './helpers/rules.js';
import { parseLogLine } from './helpers/access-log-line.js';
import * as seed from '../../src/lab/seed-resources.js';

kernelTest('IPv6: ALLOW_ANY passthrough, then REGISTRY_ONLY with the www.google.com ServiceEntry', async (t) => {
  const world = await World.create({ prefix: 'v6', ipv6: true });
  t.teardown(() => world.destroy());
  await installIstioRules(world.pod.name, ['-i', '*', '--enable-ipv6']);
  const config = `${world.dir}/mesh.yaml`;
  writeFileSync(config, seed.meshMode('ALLOW_ANY'));
  const proxy = await ProxyProcess.start(world.pod.name, ['--config', config, '--uid', '1337', '--gid', '1337', '--metrics-port', '0']);
  t.teardown(() => proxy.stop());
  const curl6 = async () => {
    const r = await world.inPod(['curl', '-6', '-sSI', '-m', '5', `https://${GOOGLE.host}`], { reject: false });
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  };

  const allowed = await curl6();
  t.is(allowed.exitCode, 0, allowed.stderr);
  const pass = parseLogLine(await proxy.nextAccessLog(/PassthroughCluster/, 0));
  t.is(pass.downstreamLocal, `[${GOOGLE.address6}]:443`);
  t.is(pass.upstreamHost, `[${GOOGLE.address6}]:443`);
  t.true(pass.downstreamRemote.startsWith(`[${LINK.pod.v6}]:`));
  t.is(pass.serverName, GOOGLE.host);

  writeFileSync(config, seed.docs(seed.meshMode('REGISTRY_ONLY'), seed.googleServiceEntry));
  t.true(await proxy.reload());
  const mark = proxy.accessLog.length;
  const viaEntry = await curl6();
  t.is(viaEntry.exitCode, 0, viaEntry.stderr);
  const line = parseLogLine(await proxy.nextAccessLog(/outbound\|443\|\|www\.google\.com/, mark));
  t.is(line.downstreamLocal, `[${GOOGLE.address6}]:443`);
  t.is(line.serverName, GOOGLE.host);
});
