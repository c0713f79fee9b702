/** Validation of a `--network-namespace` value: a name from `ip netns`, or a namespace path. */
import { ValidationError } from '../errors/validation-error.js';
import type { SystemLookups } from './system-lookups.js';

/** Throws a ValidationError naming `source` unless `value` names an existing namespace. */
export async function checkNetworkNamespace(value: string, source: string, system: SystemLookups): Promise<void> {
  const validName = /^[A-Za-z0-9_.-]{1,255}$/.test(value) && !['.', '..'].includes(value);
  if (!value.startsWith('/') && !validName) {
    throw new ValidationError(source, value, 'a namespace name from `ip netns list` or an absolute path such as /proc/PID/ns/net');
  }
  if (!(await system.networkNamespaceExists(value))) {
    throw new ValidationError(source, value, 'an existing network namespace (see `ip netns list`) or an existing /proc/PID/ns/net path');
  }
}
