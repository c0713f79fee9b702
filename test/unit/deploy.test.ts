import test from 'ava';
import { access, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { commands } from '../../src/cli/commands.js';
import { proxyCommand } from '../../src/cli/proxy.js';
import { annotationsToFlags } from '../../src/config/annotations.js';
import { parseIstioIptablesArgv } from '../helpers/istio-argv.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFile(`${ROOT}${p}`, 'utf8');

interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  securityContext?: { runAsUser?: number; capabilities?: { add?: string[]; drop?: string[] } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  ports?: { containerPort: number; name?: string }[];
}
interface PodDoc {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { initContainers: Container[]; containers: Container[] };
}

async function pod(file: string): Promise<PodDoc> {
  const docs = parseAllDocuments(await read(file));
  for (const d of docs) if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`);
  const pods = docs.map((d) => d.toJS() as PodDoc).filter((d) => d?.kind === 'Pod');
  if (pods.length !== 1) throw new Error(`${file}: expected one Pod, found ${pods.length}`);
  return pods[0]!;
}

function initContainer(p: PodDoc): Container {
  const c = p.spec.initContainers.find((x) => x.name === 'interpose-init');
  if (!c) throw new Error(`${p.metadata.name}: no interpose-init init container`);
  return c;
}

for (const file of ['deploy/kubernetes/pod-init-container.yaml', 'deploy/kubernetes/pod-annotations.yaml']) {
  test(`${file}: parses; interpose-init is root with NET_ADMIN and NET_RAW and its args are accepted`, async (t) => {
    const p = await pod(file);
    const init = initContainer(p);
    t.is(init.image, 'interpose:dev');
    t.is(init.securityContext?.runAsUser, 0);
    t.deepEqual([...(init.securityContext?.capabilities?.add ?? [])].sort(), ['NET_ADMIN', 'NET_RAW']);
    // The image's entry point is `interpose`; the args are the injector's shape: the
    // subcommand, the mapping of this pod's annotations (none → istio-init's defaults), then
    // pilot-agent's log level.
    t.is(init.command, undefined);
    t.deepEqual(init.args, ['istio-iptables', ...annotationsToFlags(p.metadata.annotations ?? {}).argv, '--log_output_level=default:info']);
    // And istio-iptables takes them.
    await t.notThrowsAsync(parseIstioIptablesArgv(init.args!.slice(1)));
    // The injector's requests and limits for istio-init (Istio's values.yaml global.proxy.resources).
    t.deepEqual(init.resources, { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2000m', memory: '1024Mi' } });
  });
}

test('pod-annotations.yaml really customises the rules (not just the defaults)', async (t) => {
  const p = await pod('deploy/kubernetes/pod-annotations.yaml');
  const { config } = await parseIstioIptablesArgv(initContainer(p).args!.slice(1));
  t.deepEqual(config.outboundInclude.cidrs.map((c) => c.text), ['10.244.0.0/16', '10.96.0.0/12']);
  t.deepEqual(config.outboundExclude.map((c) => c.text), ['10.96.0.10/32']);
  t.deepEqual(config.outboundPortsExclude, [5432]);
  t.deepEqual(config.inboundPorts, { kind: 'list', ports: [8080] });
});

test('the sidecar in pod-init-container.yaml runs as the exempt uid with flags `interpose proxy` has', async (t) => {
  const p = await pod('deploy/kubernetes/pod-init-container.yaml');
  const proxy = p.spec.containers.find((c) => c.name === 'interpose-proxy')!;
  t.deepEqual(proxy.command, ['interpose', 'proxy']);
  t.is(proxy.securityContext?.runAsUser, 1337);
  // Istio's port names: Prometheus scrapes the sidecar's http-envoy-prom.
  t.deepEqual(proxy.ports, [{ containerPort: 15090, name: 'http-envoy-prom', protocol: 'TCP' }]);
  const init = initContainer(p).args!;
  t.is(init[init.indexOf('-u') + 1], '1337');
  let parsed: Record<string, unknown> = {};
  const cmd = proxyCommand()
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} })
    .action((o: Record<string, unknown>) => {
      parsed = o;
    });
  await cmd.parseAsync(proxy.args!, { from: 'user' });
  t.is(parsed.config, '/etc/interpose/mesh.yaml');
  t.is(parsed.outboundPort, Number(init[init.indexOf('-p') + 1]));
  t.is(parsed.inboundPort, Number(init[init.indexOf('-z') + 1]));
});

test('Dockerfile: ENTRYPOINT is `interpose` (the injector passes the subcommand), and interpose is the package bin the build makes', async (t) => {
  const dockerfile = await read('Dockerfile');
  const entry = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
  t.truthy(entry, 'no exec-form ENTRYPOINT');
  t.deepEqual(JSON.parse(entry![1]!), ['interpose']);
  t.true(commands.some((c) => c.name === 'istio-iptables'), 'istio-iptables is not a registered subcommand');

  // /usr/local/bin/interpose → the package's bin, under dist/ copied from the build stage.
  t.regex(dockerfile, /ln -s "\/opt\/interpose\/\$\(node -p "require\('\.\/package\.json'\)\.bin\.interpose"\)" \/usr\/local\/bin\/interpose/);
  t.regex(dockerfile, /WORKDIR \/opt\/interpose\n/);
  t.regex(dockerfile, /COPY --from=build \/src\/dist \.\/dist/);
  t.regex(dockerfile, /RUN npm run build/);

  // The bin is a build output under dist/ (copied above), and the build stage fails unless
  // `npm run build` made it executable.
  const pkg = JSON.parse(await read('package.json')) as { bin: Record<string, string>; scripts: Record<string, string> };
  t.regex(pkg.bin.interpose!, /^dist\/[\w/.-]+\.js$/);
  t.regex(dockerfile, /test -x "\$\(node -p "require\('\.\/package\.json'\)\.bin\.interpose"\)"/);
  t.regex(pkg.scripts.build!, /build:native/);
  t.regex(await read('src/cli/main.ts'), /^#!\/usr\/bin\/env node\n/);

  // The native addon lands where src/native.ts looks for it (node-gyp-build: native/build/Release).
  t.regex(await read('src/native.ts'), /native\/build\/Release\/interpose_native\.node/);
  t.regex(dockerfile, /\.\/native\/build\/Release\/interpose_native\.node/);

  // Runtime has the netfilter tools; the build stage has the compiler.
  // Base images are build arguments defaulting to the public node images.
  t.regex(dockerfile, /^ARG BUILD_BASE=node:20-bookworm\n/m);
  t.regex(dockerfile, /^ARG RUNTIME_BASE=node:20-bookworm-slim\n/m);
  t.regex(dockerfile, /^FROM \$\{BUILD_BASE\} AS build\n/m);
  t.regex(dockerfile, /^FROM \$\{RUNTIME_BASE\}\n/m);
  t.regex(dockerfile, /install -y -qq --no-install-recommends iptables nftables iproute2/);
  t.regex(dockerfile, /install -y -qq --no-install-recommends cmake g\+\+ make/);
});

test('Dockerfile COPYs only paths that exist and .dockerignore keeps', async (t) => {
  const dockerfile = await read('Dockerfile');
  const ignored = (await read('.dockerignore'))
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
  t.deepEqual(sources, ['package.json', 'package-lock.json', 'tsconfig.json', 'scripts', 'native', 'src']);
  for (const s of sources) {
    await t.notThrowsAsync(access(`${ROOT}${s}`), `${s} missing`);
    t.false(ignored.includes(s), `${s} is in .dockerignore`);
  }
  t.true(ignored.includes('node_modules') && ignored.includes('dist') && ignored.includes('native/build'));
});
