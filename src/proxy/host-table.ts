/**
 * Host name → value lookup with Istio's host semantics: exact names win, then the most
 * specific `*.suffix` wildcard, then `*`. Lookups walk the name's labels (O(labels)), so the
 * table's size does not matter.
 */
export class HostTable<T> {
  private readonly exact = new Map<string, T>();
  /** Keyed by the suffix after "*." ("" for the lone "*"). */
  private readonly wildcard = new Map<string, T>();

  /** Adds a host; the first value stored for a host wins (Istio uses the oldest resource). */
  add(host: string, value: T): void {
    const h = host.toLowerCase();
    if (h === '*') {
      if (!this.wildcard.has('')) this.wildcard.set('', value);
    } else if (h.startsWith('*.')) {
      const suffix = h.slice(2);
      if (!this.wildcard.has(suffix)) this.wildcard.set(suffix, value);
    } else if (!this.exact.has(h)) {
      this.exact.set(h, value);
    }
  }

  /** Finds the value for a concrete name (a trailing dot and letter case are ignored). */
  lookup(name: string): T | undefined {
    let h = name.toLowerCase();
    if (h.endsWith('.')) h = h.slice(0, -1);
    const hit = this.exact.get(h);
    if (hit !== undefined) return hit;
    // "*.example.com" matches "a.example.com" and "a.b.example.com" but not "example.com".
    let dot = h.indexOf('.');
    while (dot !== -1) {
      const w = this.wildcard.get(h.slice(dot + 1));
      if (w !== undefined) return w;
      dot = h.indexOf('.', dot + 1);
    }
    return this.wildcard.get('');
  }

  get size(): number {
    return this.exact.size + this.wildcard.size;
  }
}

/** True when a concrete name is covered by an Istio host pattern (exact, `*.suffix` or `*`). */
export function hostMatches(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  const n = name.toLowerCase().replace(/\.$/, '');
  if (p === '*') return true;
  if (p.startsWith('*.')) return n.endsWith(p.slice(1)) && n.length > p.length - 1;
  return p === n;
}
