/**
 * Finds and loads the native addon (native/build/Release/interpose_native.node, else the package's
 * prebuild in native/prebuilds/<platform>-<arch>/, or the file
 * INTERPOSE_NATIVE_ADDON names) and declares the shape of its exports, for the typed facades
 * (src/native.ts, src/net/cidr-trie.ts, src/proxy/splice-relay.linux.ts). Apart from native.ts
 * re-exporting it, it imports none of them, so they import it without a cycle.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InterceptError } from './errors/index.js';

/** @internal Opaque handle to a native trie (a type-tagged napi_external owning it). */
export type NativeTrieHandle = object & { readonly __nativeTrie: unique symbol };

/** @internal An errno the addon reports instead of throwing, and the call that failed. */
export interface NativeFailure {
  errno: number;
  syscall: string;
}
interface NativeDst {
  address: string;
  port: number;
  family: 4 | 6;
}

/** @internal Shape of the addon's exports. */
export interface NativeAddon {
  createTrie(): NativeTrieHandle;
  trieInsert4(h: NativeTrieHandle, addr: number, len: number, value: number): boolean;
  trieErase4(h: NativeTrieHandle, addr: number, len: number): boolean;
  trieLookup4(h: NativeTrieHandle, addr: number): number;
  trieInsert6(h: NativeTrieHandle, addr: Uint8Array, len: number, value: number): boolean;
  trieErase6(h: NativeTrieHandle, addr: Uint8Array, len: number): boolean;
  trieLookup6(h: NativeTrieHandle, addr: Uint8Array): number;
  trieLookupMany4(h: NativeTrieHandle, addrs: Uint32Array, out: Int32Array): void;
  trieLookupMany6(h: NativeTrieHandle, addrs: Uint8Array, out: Int32Array): void;
  trieInsertMany4(h: NativeTrieHandle, addrs: Uint32Array, lens: Uint8Array, values: Int32Array): void;
  trieInsertMany6(h: NativeTrieHandle, addrs: Uint8Array, lens: Uint8Array, values: Int32Array): void;
  trieSize(h: NativeTrieHandle): number;
  trieMemoryBytes(h: NativeTrieHandle): number;
  originalDst(fd: number): NativeDst | NativeFailure;
  originalDstLookup(fd: number, trie: NativeTrieHandle): (NativeDst & { match: number }) | NativeFailure;
  setTransparent(fd: number, family: 4 | 6): NativeFailure | undefined;
  setMark(fd: number, mark: number): NativeFailure | undefined;
  sendNetlink(protocol: number, bytes: Uint8Array, netnsPath: string): Promise<NetfilterBatchOutcome & Partial<NativeFailure>>;
  dumpNetlink(protocol: number, request: Uint8Array, netnsPath: string): { messages: Buffer } | NativeFailure;
  namespaceCookie(netnsPath: string): bigint | NativeFailure;
  tryLockExclusive(fd: number): boolean | NativeFailure;
  readProcNetIn(netnsPath: string, name: string): string | NativeFailure;
}

/** One answer of the kernel to a batch message: error 0 is an ack, else a positive errno. */
export interface NetlinkReply {
  readonly seq: number;
  readonly error: number;
  /** The kernel's extended-ack text, when it gave one. */
  readonly message: string;
}

export interface NetfilterBatchOutcome {
  readonly replies: readonly NetlinkReply[];
}

/** Environment variable that points the loader at a specific .node file. */
export const NATIVE_ADDON_ENV = 'INTERPOSE_NATIVE_ADDON';

// This file (src/native-loader.ts, dist/native-loader.js) sits one directory below the package root.
const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const nativeDir = `${packageRoot}native`;

/** The addon's path: a local build first, else the package's prebuild for this platform (node-gyp-build picks); undefined when neither. */
function defaultAddonPath(): string | undefined {
  const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build') as { path(dir: string): string };
  try {
    return nodeGypBuild.path(nativeDir);
  } catch {
    return undefined;
  }
}

/**
 * A native executable built with the addon (native/build/Release/NAME, a local build first) or
 * shipped with its prebuild (native/prebuilds/<platform>-<arch>/NAME); undefined when neither
 * exists. The CNI shim (native/src/cni_shim/) is found this way by `interpose cni install`.
 */
export function nativeExecutablePath(name: string): string | undefined {
  for (const dir of [`${nativeDir}/build/Release`, `${nativeDir}/prebuilds/${process.platform}-${process.arch}`]) {
    if (existsSync(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

let addon: NativeAddon | undefined;

/**
 * Loads the addon once (INTERPOSE_NATIVE_ADDON, else native/build/Release, else the prebuild)
 * or throws an InterceptError saying how to build it. Loading is lazy so commands that never
 * touch sockets or the trie work without a compiler.
 */
export function loadAddon(): NativeAddon {
  if (addon) return addon;
  const path = process.env[NATIVE_ADDON_ENV] || defaultAddonPath();
  if (path === undefined || !existsSync(path)) {
    throw new InterceptError(
      `native addon not found at ${path ?? `${nativeDir}/build/Release, nor a prebuild for ${process.platform}-${process.arch} in ${nativeDir}/prebuilds`}: ` +
        `build it with \`npm run build:native\` in ${packageRoot} (a checkout), ` +
        `\`sh ${packageRoot}scripts/build-native-if-needed.sh\` (an installed package) ` +
        '(cmake-js; needs cmake >= 3.15 and a C++17 compiler), ' +
        `or set ${NATIVE_ADDON_ENV} to a built interpose_native.node`,
    );
  }
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (cause) {
    throw new InterceptError(
      `native addon at ${path} failed to load (rebuild it with \`npm run build:native\`): ${(cause as Error).message}`,
      { cause },
    );
  }
  return addon;
}

/** True when the addon is built and loads (for code with a slower path that needs none). */
export function addonLoads(): boolean {
  try {
    loadAddon();
    return true;
  } catch {
    return false;
  }
}
