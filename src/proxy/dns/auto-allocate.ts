/**
 * Istio's DNS auto-allocation (ISTIO_META_DNS_AUTO_ALLOCATE): every ServiceEntry host with no
 * `addresses`, not a wildcard and not `resolution: NONE` gets a virtual IPv4 address from the
 * class E range 240.240.0.0/16 and an IPv6 one from the benchmarking range 2001:2::/48. The
 * DNS proxy answers the host with them, and the registry claims connections to them for that
 * ServiceEntry — which is how TCP services without stable IPs work under REGISTRY_ONLY.
 *
 * The slots are istiod's (pilot/pkg/serviceregistry/serviceentry autoAllocateIPs): FNV-1a 32 of
 * "namespace/host" modulo 256*254 slots, double hashing on collision with the prime 65011, then
 * addresses handed out in slot order, skipping x.x.x.0 and x.x.x.255. Istio orders services by
 * creation time; a file has no such time, so document order stands in for it. The IPv6 form is
 * istiod's 2001:2::f0f0:<third><fourth> with the fourth octet zero-padded to two hex digits, so
 * that two services can never share an address (istiod's unpadded form can collide).
 */
import type { ServiceEntry } from '../istio-types.js';

/** One host's allocated pair of addresses. */
export interface AllocatedAddress {
  entry: ServiceEntry;
  host: string;
  v4: string;
  v6: string;
}

const MAX_SLOTS = 256 * 254;
const PRIME = 65011;

/** FNV-1a, 32 bits (Go's hash/fnv New32a), over the UTF-8 bytes of `text`. */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** True when the host may get an address: Istio allocates for concrete names it can route on. */
function allocatable(entry: ServiceEntry, host: string): boolean {
  return entry.addresses.length === 0 && !host.startsWith('*') && entry.resolution !== 'NONE';
}

/** Allocates addresses for every eligible host of `entries`, deterministically. */
export function autoAllocate(entries: readonly ServiceEntry[]): AllocatedAddress[] {
  const slots: ({ entry: ServiceEntry; host: string; key: string } | undefined)[] = new Array(MAX_SLOTS);
  let placed = 0;
  for (const entry of entries) {
    for (const host of entry.hosts) {
      if (!allocatable(entry, host)) continue;
      if (placed >= MAX_SLOTS) return finish(slots);
      const key = `${entry.namespace}/${host.toLowerCase()}`;
      const hash = fnv1a32(key);
      let slot = hash % MAX_SLOTS;
      if (slots[slot] !== undefined) {
        // Double hashing, with istiod's uint32 arithmetic and its modulus of MAX_SLOTS - 1.
        const step = PRIME - (hash % PRIME);
        for (let i = 1; ; i++) {
          slot = ((hash + Math.imul(i, step)) >>> 0) % (MAX_SLOTS - 1);
          if (slots[slot] === undefined) break;
        }
      }
      slots[slot] = { entry, host, key };
      placed++;
    }
  }
  return finish(slots);
}

function finish(slots: ({ entry: ServiceEntry; host: string; key: string } | undefined)[]): AllocatedAddress[] {
  const out: AllocatedAddress[] = [];
  const byKey = new Map<string, [number, number]>();
  let x = 0;
  for (let i = 0; i < MAX_SLOTS; i++) {
    x++;
    const s = slots[i];
    if (s === undefined) continue;
    // x % 255 === 0 would give 240.240.N.0; istiod moves on to the next number.
    if (x % 255 === 0) x++;
    let pair = byKey.get(s.key);
    if (!pair) byKey.set(s.key, (pair = [Math.floor(x / 255), x % 255]));
    const [third, fourth] = pair;
    out.push({
      entry: s.entry,
      host: s.host,
      v4: `240.240.${third}.${fourth}`,
      v6: third === 0 ? `2001:2::f0f0:${fourth.toString(16)}` : `2001:2::f0f0:${third.toString(16)}${fourth.toString(16).padStart(2, '0')}`,
    });
  }
  return out;
}
