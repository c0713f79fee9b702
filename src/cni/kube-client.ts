/**
 * The parts of @kubernetes/client-node the plugin uses, imported by name so the bundler keeps
 * only what they need (a namespace import kept the whole client: ~15 MB and ~0.7 s of
 * start-up on every ADD). pod-client.ts loads this module only when a pod must be read.
 */
export { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
