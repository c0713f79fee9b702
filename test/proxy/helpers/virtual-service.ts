/** VirtualService documents the proxy tests put after their ServiceEntries. */

/**
 * A VirtualService for `host` whose requests matching `uri` (an Istio StringMatch, such as
 * `{exact: /slow}`) time out after `timeout`, every other request routed to `host` as is.
 */
export function timeoutRoute(host: string, uri: string, timeout = '200ms'): string {
  return `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${host.replace(/\./g, '-')}-timeout}
spec:
  hosts: [${host}]
  http:
  - match: [{uri: ${uri}}]
    timeout: ${timeout}
    route: [{destination: {host: ${host}}}]
  - route: [{destination: {host: ${host}}}]
`;
}
