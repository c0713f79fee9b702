/**
 * Drops root after the listeners are bound. The rules' owner match (-m owner --uid-owner /
 * --gid-owner, istio-iptables -u/-g) is what lets the proxy's own upstream connections leave
 * without being redirected back to it, so running as that uid/gid is not optional.
 */
import { ValidationError } from '../errors/index.js';

/** setgroups([]) → setgid → setuid, in the only order that works. No-op when both are undefined. */
export function dropPrivileges(uid: number | undefined, gid: number | undefined): void {
  if (uid === undefined && gid === undefined) return;
  if (process.getuid?.() !== 0) {
    if ((uid === undefined || uid === process.getuid?.()) && (gid === undefined || gid === process.getgid?.())) return;
    throw new ValidationError('--uid/--gid', `${uid}/${gid}`, 'to be started as root (or as that uid/gid already)');
  }
  process.setgroups?.([]);
  if (gid !== undefined) process.setgid?.(gid);
  if (uid !== undefined) process.setuid?.(uid);
}
