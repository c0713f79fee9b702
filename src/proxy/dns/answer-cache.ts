/**
 * Upstream answers kept for their TTL: the smallest TTL among the answer records, or for a
 * negative answer (NXDOMAIN, or NOERROR with no answers) the SOA's TTL capped by its minimum
 * field (RFC 2308). Answers with TTL 0, SERVFAIL and truncated answers are not kept. Bounded:
 * beyond `maxEntries` the oldest entry goes. Served answers carry TTLs reduced by their age.
 */
import type { Answer, DecodedPacket } from 'dns-packet';

const MAX_TTL_S = 86_400;

interface Entry {
  packet: DecodedPacket;
  stored: number;
  expires: number;
}

export class AnswerCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  static key(name: string, type: string, klass: string): string {
    return `${name.toLowerCase().replace(/\.$/, '')}|${type}|${klass}`;
  }

  /** Keeps `packet` (a decoded upstream response) under `key` when its TTL allows. */
  store(key: string, packet: DecodedPacket): void {
    const ttl = cacheTtl(packet);
    if (ttl <= 0) return;
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    const stored = this.now();
    this.entries.set(key, { packet, stored, expires: stored + ttl * 1000 });
  }

  /** The cached response with TTLs aged, or undefined when absent or expired. */
  get(key: string): DecodedPacket | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const now = this.now();
    if (now >= entry.expires) {
      this.entries.delete(key);
      return undefined;
    }
    const age = Math.floor((now - entry.stored) / 1000);
    const aged = (r: Answer): Answer => (r.type === 'OPT' ? r : { ...r, ttl: Math.max((r.ttl ?? 0) - age, 0) });
    const p = entry.packet;
    return {
      ...p,
      answers: (p.answers ?? []).map(aged),
      authorities: (p.authorities ?? []).map(aged),
      additionals: (p.additionals ?? []).map(aged),
    };
  }

  get size(): number {
    return this.entries.size;
  }
}

/** Seconds an upstream response may be reused; 0 = not at all. */
export function cacheTtl(packet: DecodedPacket): number {
  const rcode = (packet.flags ?? 0) & 0xf;
  if (packet.flag_tc || (rcode !== 0 && rcode !== 3)) return 0;
  const answers = packet.answers ?? [];
  if (answers.length > 0) return Math.min(MAX_TTL_S, ...answers.map((a) => (a.type === 'OPT' ? MAX_TTL_S : (a.ttl ?? 0))));
  const soa = (packet.authorities ?? []).find((a) => a.type === 'SOA');
  if (!soa || soa.type !== 'SOA') return 0;
  return Math.min(MAX_TTL_S, soa.ttl ?? 0, soa.data.minimum ?? 0);
}
