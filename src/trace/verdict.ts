/** What the kernel does with the traced packet, in terms a user acts on. */

export type Verdict =
  /** NAT REDIRECT: the connection lands on this local port (the proxy) instead. */
  | { readonly kind: 'redirect'; readonly port: number }
  /** A DNS query (port 53) redirected to istio-agent's DNS proxy. */
  | { readonly kind: 'dns-redirect'; readonly port: number }
  /** TPROXY: delivered to the transparent listener on this port, destination unchanged. */
  | { readonly kind: 'tproxy'; readonly port: number; readonly mark: number }
  /** Not redirected: the packet goes where it was addressed (RETURN, or no rule matched). */
  | { readonly kind: 'untouched' }
  | { readonly kind: 'drop' };

/** One line, e.g. `redirect to port 15001`. */
export function describeVerdict(v: Verdict): string {
  switch (v.kind) {
    case 'redirect':
      return `redirect to port ${v.port}`;
    case 'dns-redirect':
      return `DNS redirect to port ${v.port}`;
    case 'tproxy':
      return `TPROXY to port ${v.port} (mark 0x${v.mark.toString(16)})`;
    case 'untouched':
      return 'untouched (not redirected)';
    case 'drop':
      return 'drop';
  }
}
