/** SystemLookups on Linux: getent for names (so NSS sources count), /proc/net/if_inet6 or ip for addresses. */
import { existsSync, readFileSync } from 'node:fs';
import type { SystemLookups } from '../config/system-lookups.js';
import { NamespacedExecutor, type Executor } from './executor.js';
import { hasGlobalIPv6Address, readIfInet6 } from './if-inet6.linux.js';

export class LinuxSystemLookups implements SystemLookups {
  constructor(private readonly executor: Executor) {}

  lookupUser(name: string): Promise<number | undefined> {
    return this.getent('passwd', name);
  }

  lookupGroup(name: string): Promise<number | undefined> {
    return this.getent('group', name);
  }

  async readResolvConf(networkNamespace: string | undefined): Promise<string> {
    // `ip netns exec NAME` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf.
    const candidates =
      networkNamespace && !networkNamespace.startsWith('/')
        ? [`/etc/netns/${networkNamespace}/resolv.conf`, '/etc/resolv.conf']
        : ['/etc/resolv.conf'];
    for (const file of candidates) {
      if (existsSync(file)) return readFileSync(file, 'utf8');
    }
    return '';
  }

  async hasGlobalIPv6(networkNamespace: string | undefined): Promise<boolean> {
    const exec = networkNamespace ? new NamespacedExecutor(this.executor, networkNamespace) : this.executor;
    // In this process's own namespace the kernel's address list is a file away: no `ip` process.
    if (exec.realNamespace === '') return hasGlobalIPv6Address(readIfInet6());
    const r = await exec.run(['ip', '-6', '-o', 'addr', 'show', 'scope', 'global']);
    if (r.exitCode !== 0) return false;
    // Addresses on lo do not count: the ::6/128 interpose (like istio) adds there for the
    // inbound passthrough has global scope, and must not turn IPv6 on for the next run.
    return r.stdout.split('\n').some((line) => /^\d+:\s+\S+/.test(line) && !/^\d+:\s+lo\s/.test(line));
  }

  async networkNamespaceExists(networkNamespace: string): Promise<boolean> {
    if (networkNamespace.startsWith('/')) return existsSync(networkNamespace);
    return existsSync(`/run/netns/${networkNamespace}`) || existsSync(`/var/run/netns/${networkNamespace}`);
  }

  private async getent(db: 'passwd' | 'group', name: string): Promise<number | undefined> {
    const r = await this.executor.run(['getent', db, name]);
    if (r.exitCode !== 0) return undefined;
    const fields = r.stdout.trim().split('\n')[0]?.split(':') ?? [];
    const id = Number(fields[2]);
    return Number.isInteger(id) ? id : undefined;
  }
}
