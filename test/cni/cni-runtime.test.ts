/**
 * interpose-cni driven as a container runtime drives a chained plugin: a conflist of the
 * Debian reference `bridge` (+ `host-local`) and interpose-cni, run plugin by plugin with
 * prevResult threaded (helpers/cni-runtime.ts), pods served by a stand-in API server.
 * Every test runs on both call paths and must come out the same: [node], the Node plugin as
 * the bin dir's interpose-cni; [daemon], the native shim forwarding to a running
 * `interpose cni install --watch` (what a node runs in production).
 */
import test, { type ExecutionContext, type Implementation } from 'ava';
import { execa } from 'execa';
import { CALL_PATHS, CLI, CniNetwork, cniSkipReason, probe, rulesIn } from './helpers/cni-network.js';
import { INJECTED } from './helpers/kube-stand-in.js';

const skip = cniSkipReason();
if (skip) console.log(`SKIP: ${skip}`);

// istio-iptables' chains, or the inet tables --native-nftables installs (istio-nftables' names).
const ours = (rules: string) => /ISTIO_|table inet istio-proxy-/.test(rules);

for (const path of CALL_PATHS) {
  const cniTest = (title: string, fn: Implementation<[]>) =>
    skip ? test.skip(`[${path}] ${title} (skipped: ${skip})`, fn) : test.serial(`[${path}] ${title}`, fn);

  /** On the daemon path, every log line came from the daemon: no call fell back to Node. */
  const ranWhereExpected = (t: ExecutionContext, net: CniNetwork) => {
    const pids = [...net.logPids()];
    if (path === 'daemon') t.deepEqual(pids, [net.daemon!.pid], 'every call was served by the daemon');
    else t.false(pids.includes(process.pid));
  };

  cniTest('ADD installs the rules istio-iptables installs for the annotations; traffic lands on the proxy ports; DEL leaves nothing', async (t) => {
    const net = await CniNetwork.create(t, { path });
    const annotations = {
      ...INJECTED,
      'traffic.sidecar.istio.io/excludeOutboundPorts': '8081',
      'traffic.sidecar.istio.io/excludeOutboundIPRanges': `${net.gateway.replace(/\.1$/, '.200')}/32`,
    };
    net.api.addPod('shop', 'web', { annotations, proxyEnv: { ISTIO_META_DNS_CAPTURE: 'true' } });
    const pod = await net.sandbox({ namespace: 'shop', name: 'web' });
    const hostBefore = await execa('iptables-save').then((r) => String(r.stdout).split('\n').filter((l) => !l.startsWith('#') && !l.startsWith(':')).join('\n'));

    const add = await net.runtime.add(pod);
    t.true(add.ok, JSON.stringify(add.failed));
    t.is(net.api.requests, 1, 'ADD read the pod once');

    // prevResult passed through unchanged: the chain's result is bridge's result.
    const bridgeOnly = (add.result as { interfaces?: unknown; ips?: Array<{ address: string }> });
    t.truthy(bridgeOnly.ips?.[0]?.address.startsWith(net.subnet.replace(/0\/24$/, '')), JSON.stringify(add.result));

    // The same rules `interpose istio-iptables` installs for the flags annotations-to-flags derives.
    const flags = await execa('node', [CLI, 'annotations-to-flags', ...Object.entries(annotations).flatMap(([k, v]) => ['-a', `${k}=${v}`]), '--format', 'json']);
    const argv = JSON.parse(String(flags.stdout)) as string[];
    const twin = await net.sandbox({ namespace: 'shop', name: 'twin' });
    const direct = await execa('node', [CLI, 'istio-iptables', ...argv, '--redirect-dns', '--capture-all-dns', '--network-namespace', twin.name], {
      reject: false,
      env: { INTERPOSE_STATE_DIR: net.ownershipDir },
    });
    t.is(direct.exitCode, 0, String(direct.stderr));
    const podRules = await rulesIn(pod.name);
    t.true(ours(podRules), podRules);
    t.is(podRules, await rulesIn(twin.name));

    const gw = net.gateway;
    const excludedIp = gw.replace(/\.1$/, '.200');
    // The app as CNI mode runs it: an ordinary uid with no capabilities at all (no NET_ADMIN,
    // nothing in the bounding set) — the rules were written by the runtime's plugin, not by it.
    const seen = await probe(pod.name, { tcp: [`${gw}:80`, `${gw}:8081`, `${excludedIp}:80`], udp: [`${gw}:53`, `${gw}:5353`] }, { asUid: 1000 });
    t.is(seen.uid, 1000);
    t.is(seen.capEff, '0000000000000000');
    t.is(seen.capBnd, '0000000000000000');
    t.deepEqual(seen.tcp, { [`${gw}:80`]: true, [`${gw}:8081`]: false, [`${excludedIp}:80`]: false });
    t.deepEqual(seen.udp, { [`${gw}:53`]: true, [`${gw}:5353`]: false });

    // A second ADD of interpose-cni for the same container (bridge's own ADD is not repeatable)
    // changes nothing and passes prevResult through again.
    const again = await net.runtime.execPlugin('ADD', net.runtime.conflist.plugins[1]!, pod, add.result);
    t.is(again.exitCode, 0, again.stdout);
    t.deepEqual(again.output, add.result as Record<string, unknown>);
    t.is(await rulesIn(pod.name), podRules);
    t.true((await net.runtime.check(pod)).ok);

    const failures = await net.runtime.del(pod);
    t.deepEqual(failures, []);
    const after = await rulesIn(pod.name);
    t.false(ours(after), after);
    t.deepEqual(net.records(), [], 'no record of the attachment is left');
    const hostAfter = await execa('iptables-save').then((r) => String(r.stdout).split('\n').filter((l) => !l.startsWith('#') && !l.startsWith(':')).join('\n'));
    t.is(hostAfter, hostBefore, 'the host netfilter rules are as before');
    // DEL again: idempotent.
    t.deepEqual(await net.runtime.del(pod), []);
    t.regex(net.log(), /rules installed/);
    ranWhereExpected(t, net);
  });

  cniTest('native_nftables: the rules istio-iptables --native-nftables installs, committed over netlink; CHECK passes; DEL leaves nothing', async (t) => {
    const net = await CniNetwork.create(t, { path, plugin: { native_nftables: true } });
    net.api.addPod('shop', 'nft', { annotations: INJECTED });
    const pod = await net.sandbox({ namespace: 'shop', name: 'nft' });
    const add = await net.runtime.add(pod);
    t.true(add.ok, JSON.stringify(add.failed));
    t.regex(net.log(), /rules installed \(nftables \(commit via netlink\)\)/);
    const twin = await net.sandbox({ namespace: 'shop', name: 'twin' });
    const flags = await execa('node', [CLI, 'annotations-to-flags', ...Object.entries(INJECTED).flatMap(([k, v]) => ['-a', `${k}=${v}`]), '--format', 'json']);
    const direct = await execa('node', [CLI, 'istio-iptables', ...(JSON.parse(String(flags.stdout)) as string[]), '--native-nftables', '--network-namespace', twin.name], { reject: false, env: { INTERPOSE_STATE_DIR: net.ownershipDir } });
    t.is(direct.exitCode, 0, String(direct.stderr));
    const podRules = await rulesIn(pod.name);
    t.regex(podRules, /table inet istio-proxy-nat/);
    t.is(podRules, await rulesIn(twin.name));
    const seen = await probe(pod.name, { tcp: [`${net.gateway}:80`] }, { asUid: 1000 });
    t.deepEqual(seen.tcp, { [`${net.gateway}:80`]: true });
    t.true((await net.runtime.check(pod)).ok);
    t.deepEqual(await net.runtime.del(pod), []);
    t.false(ours(await rulesIn(pod.name)));
  });

  cniTest('CHECK fails after a rule is deleted by hand; DEL still removes the rest', async (t) => {
    const net = await CniNetwork.create(t, { path });
    net.api.addPod('shop', 'cart', { annotations: INJECTED });
    const pod = await net.sandbox({ namespace: 'shop', name: 'cart' });
    t.true((await net.runtime.add(pod)).ok);
    t.true((await net.runtime.check(pod)).ok);
    await execa('ip', ['netns', 'exec', pod.name, 'iptables', '-t', 'nat', '-D', 'OUTPUT', '-j', 'ISTIO_OUTPUT']);
    const check = await net.runtime.check(pod);
    t.false(check.ok);
    t.is(check.failed?.plugin, 'interpose-cni');
    t.is(check.failed?.output?.code, 101, check.failed?.stdout);
    t.regex(String(check.failed?.output?.msg), /differ from what ADD installed/);
    t.deepEqual(await net.runtime.del(pod), []);
    t.false(ours(await rulesIn(pod.name)));
  });

  cniTest('DEL succeeds with an empty CNI_NETNS and with a namespace that is gone', async (t) => {
    const net = await CniNetwork.create(t, { path });
    net.api.addPod('shop', 'a', { annotations: INJECTED });
    net.api.addPod('shop', 'b', { annotations: INJECTED });
    const a = await net.sandbox({ namespace: 'shop', name: 'a' });
    const b = await net.sandbox({ namespace: 'shop', name: 'b' });
    t.true((await net.runtime.add(a)).ok);
    t.true((await net.runtime.add(b)).ok);
    const interpose = net.runtime.conflist.plugins[1]!;
    const emptyNetns = await net.runtime.execPlugin('DEL', interpose, { ...a, netns: '' }, undefined);
    t.is(emptyNetns.exitCode, 0, emptyNetns.stdout);
    await execa('ip', ['netns', 'del', b.name]);
    const gone = await net.runtime.execPlugin('DEL', interpose, b, undefined);
    t.is(gone.exitCode, 0, gone.stdout);
    t.deepEqual(net.records(), []);
  });

  cniTest('GC (CNI 1.1) removes the rules of attachments the runtime no longer lists; a malformed list removes nothing', async (t) => {
    const net = await CniNetwork.create(t, { path });
    net.api.addPod('shop', 'kept', { annotations: INJECTED });
    net.api.addPod('shop', 'stale', { annotations: INJECTED });
    const kept = await net.sandbox({ namespace: 'shop', name: 'kept' });
    const stale = await net.sandbox({ namespace: 'shop', name: 'stale' });
    t.true((await net.runtime.add(kept)).ok);
    t.true((await net.runtime.add(stale)).ok);
    t.is(net.records().length, 2);
    const interpose = net.runtime.conflist.plugins[1]!;
    // GC carries no container: the runtime lists the attachments that are still alive.
    const none = { containerId: '', netns: '', ifname: '', args: '' };
    const gc = (valid: unknown[]) => net.runtime.execPlugin('GC', interpose, none, undefined, { cniVersion: '1.1.0', runtimeConfig: { 'cni.dev/valid-attachments': valid } });
    const live = { containerID: kept.containerId, ifname: kept.ifname };

    for (const bad of [[live, { containerID: 5, ifname: 'eth0' }], [live, null], [live, { containerID: { toString: null }, ifname: 'eth0' }]]) {
      const refused = await gc(bad);
      t.is(refused.exitCode, 1, refused.stdout);
      t.is(refused.output?.['code'], 7, refused.stdout);
      t.regex(String(refused.output?.['msg']), /cni\.dev\/valid-attachments/);
      t.is(net.records().length, 2, `${JSON.stringify(bad)} removed a record`);
      t.true(ours(await rulesIn(stale.name)), `${JSON.stringify(bad)} removed rules`);
    }

    const done = await gc([live]);
    t.is(done.exitCode, 0, done.stdout);
    t.true(ours(await rulesIn(kept.name)));
    t.false(ours(await rulesIn(stale.name)));
    t.is(net.records().length, 1);
    t.deepEqual(await net.runtime.del(kept), []);
    t.deepEqual(net.records(), []);
  });

  cniTest('an unreachable API server fails ADD with a CNI error naming it; excluded namespaces pass without asking', async (t) => {
    const net = await CniNetwork.create(t, { path, server: 'https://127.0.0.1:9' });
    const pod = await net.sandbox({ namespace: 'shop', name: 'web' });
    const add = await net.runtime.add(pod);
    t.false(add.ok);
    t.is(add.failed?.plugin, 'interpose-cni');
    t.is(add.failed?.output?.code, 11, add.failed?.stdout);
    t.regex(String(add.failed?.output?.msg), /Kubernetes API server https:\/\/127\.0\.0\.1:9 .*pod shop\/web/);
    t.regex(net.log(), /ADD failed \(code 11\): cannot reach the Kubernetes API server https:\/\/127\.0\.0\.1:9/);
    t.false(ours(await rulesIn(pod.name)));
    await net.runtime.del(pod);

    const system = await net.sandbox({ namespace: 'kube-system', name: 'coredns' });
    const sys = await net.runtime.add(system);
    t.true(sys.ok, JSON.stringify(sys.failed));
    t.false(ours(await rulesIn(system.name)));
    t.deepEqual(await net.runtime.del(system), []);
    ranWhereExpected(t, net);
  });

  cniTest('pods the injector did not touch, opted out, NONE or host-network are left alone', async (t) => {
    const net = await CniNetwork.create(t, { path });
    const cases = {
      plain: {},
      optout: { annotations: { ...INJECTED, 'sidecar.istio.io/inject': 'false' } },
      none: { annotations: { ...INJECTED, 'sidecar.istio.io/interceptionMode': 'NONE' } },
      host: { annotations: INJECTED, hostNetwork: true },
    };
    for (const [name, spec] of Object.entries(cases)) {
      net.api.addPod('shop', name, spec);
      const pod = await net.sandbox({ namespace: 'shop', name });
      const add = await net.runtime.add(pod);
      t.true(add.ok, `${name}: ${JSON.stringify(add.failed)}`);
      t.false(ours(await rulesIn(pod.name)), name);
      t.true((await net.runtime.check(pod)).ok, name);
      t.deepEqual(await net.runtime.del(pod), [], name);
    }
    t.regex(net.log(), /no sidecar\.istio\.io\/status annotation/);
    t.regex(net.log(), /interception mode NONE/);
    t.regex(net.log(), /host-network pod/);
  });

  cniTest('a bad annotation fails ADD with a CNI error naming it and changes nothing', async (t) => {
    const net = await CniNetwork.create(t, { path });
    net.api.addPod('shop', 'bad', { annotations: { ...INJECTED, 'traffic.sidecar.istio.io/excludeOutboundPorts': '99999' } });
    const pod = await net.sandbox({ namespace: 'shop', name: 'bad' });
    const add = await net.runtime.add(pod);
    t.false(add.ok);
    t.is(add.failed?.output?.code, 102);
    t.regex(String(add.failed?.output?.msg), /traffic\.sidecar\.istio\.io\/excludeOutboundPorts/);
    t.false(ours(await rulesIn(pod.name)));
    t.deepEqual(net.records(), []);
    await net.runtime.del(pod);
  });
}
