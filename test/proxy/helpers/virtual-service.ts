/** VirtualService documents the proxy tests put after their ServiceEntries. */

/**
 * A VirtualService named `name` for `host`: requests matching `uri` (an Istio StringMatch, such
 * as `{exact: /slow}`) get the route field `field` (one line of YAML, e.g. `timeout: 200ms`),
 * every other request is routed to `host` as is.
 */
export function matchedRoute(host: string, uri: string, field: string, name = host.replace(/\./g, '-')): string {
  return `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}}
spec:
  hosts: [${host}]
  http:
  - match: [{uri: ${uri}}]
    ${field}
    route: [{destination: {host: ${host}}}]
  - route: [{destination: {host: ${host}}}]
`;
}

/** matchedRoute with a route timeout: requests matching `uri` time out after `timeout`. */
export function timeoutRoute(host: string, uri: string, timeout = '200ms'): string {
  return matchedRoute(host, uri, `timeout: ${timeout}`, `${host.replace(/\./g, '-')}-timeout`);
}
