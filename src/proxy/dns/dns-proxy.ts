/**
 * The DNS proxy istio-agent runs on port 15053 when DNS capture is on (ISTIO_META_DNS_CAPTURE):
 * `istio-iptables --redirect-dns` sends the pod's queries to the resolv.conf nameservers here,
 * over UDP and TCP, on 127.0.0.1 and ::1 (where the kernel's REDIRECT delivers locally made
 * packets). ServiceEntry hosts are answered from the name table; everything else comes from
 * the answer cache or is forwarded to the resolv.conf nameservers. Every read is bounded (query
 * size, TCP frame length, connections, queries in flight) and every message that does not
 * decode as a single-question query is dropped and counted.
 */
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import {
  AUTHORITATIVE_ANSWER,
  RECURSION_AVAILABLE,
  RECURSION_DESIRED,
  TRUNCATED_RESPONSE,
  decode,
  encode,
  type Answer,
  type DecodedPacket,
  type Packet,
  type Question,
} from 'dns-packet';
import type { Registry as PromRegistry } from 'prom-client';
import type { Logger } from 'pino';
import { InterceptError } from '../../errors/index.js';
import { resolverSettings, type ResolverSettings } from '../../config/resolv-conf.js';
import type { ServiceEntry } from '../istio-types.js';
import { AnswerCache } from './answer-cache.js';
import type { AllocatedAddress } from './auto-allocate.js';
import { DnsMetrics } from './dns-metrics.js';
import { NameTable } from './name-table.js';
import { frame, FrameTooLargeError, TcpFrameReader } from './tcp-frames.js';
import { UpstreamClient, UpstreamError } from './upstream-client.js';

/** Largest query accepted: a question and EDNS options fit in far less. */
export const MAX_QUERY_BYTES = 4096;
/** TTL of the answers the proxy makes itself (istio-agent's). */
const LOCAL_TTL_S = 30;
/** Queries waiting for a nameserver at once; beyond, SERVFAIL at once. */
const MAX_IN_FLIGHT = 1024;
const MAX_TCP_CONNECTIONS = 256;
/** Queries one TCP connection may have waiting before it is read no further. */
const MAX_PER_TCP_CONNECTION = 32;
/** RFC 7766 §6.2.3 suggests seconds, not minutes, for idle DNS/TCP connections. */
const TCP_IDLE_MS = 10_000;
const RCODE_SERVFAIL = 2;

type Protocol = 'udp' | 'tcp';

export interface DnsProxyOptions {
  port: number;
  /** Loopback addresses to listen on; those the namespace lacks (no IPv6) are skipped with a log line. */
  addresses?: readonly string[];
  /** resolv.conf to take nameservers, search list and timeout from (re-read on every update). */
  resolvConf: string;
  /** Nameserver port, 53 except in tests. */
  upstreamPort?: number;
  log: Logger;
  metrics: PromRegistry;
}

export class DnsProxy {
  private readonly udp: UdpSocket[] = [];
  private readonly tcp: Server[] = [];
  private readonly metrics: DnsMetrics;
  private readonly cache = new AnswerCache();
  private names = new NameTable([], [], []);
  private upstream!: UpstreamClient;
  private settings!: ResolverSettings;
  private inFlight = 0;
  private boundPort = 0;

  private constructor(private readonly options: DnsProxyOptions) {
    this.metrics = new DnsMetrics(options.metrics);
  }

  /** Reads resolv.conf and binds UDP and TCP on each loopback address. */
  static async start(options: DnsProxyOptions, entries: readonly ServiceEntry[], allocated: readonly AllocatedAddress[]): Promise<DnsProxy> {
    const proxy = new DnsProxy(options);
    proxy.update(entries, allocated);
    try {
      await proxy.listen();
    } catch (err) {
      proxy.close();
      throw err;
    }
    return proxy;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Rebuilds the name table from a (re)loaded configuration, re-reading resolv.conf. */
  update(entries: readonly ServiceEntry[], allocated: readonly AllocatedAddress[]): void {
    const o = this.options;
    let text = '';
    try {
      text = readFileSync(o.resolvConf, 'utf8');
    } catch (err) {
      o.log.warn({ err, file: o.resolvConf }, `DNS proxy: cannot read ${o.resolvConf} (${(err as Error).message}); names not in the registry will get SERVFAIL`);
    }
    this.settings = resolverSettings(text);
    if (text && this.settings.nameservers.length === 0) {
      o.log.warn({ file: o.resolvConf }, `DNS proxy: ${o.resolvConf} lists no nameserver; names not in the registry will get SERVFAIL`);
    }
    this.upstream = new UpstreamClient({
      nameservers: this.settings.nameservers,
      timeoutMs: this.settings.timeoutMs,
      ...(o.upstreamPort !== undefined ? { port: o.upstreamPort } : {}),
      onFailure: (err, protocol) => this.metrics.upstreamFailures.inc({ protocol, reason: err.reason }),
      onAttempt: (_server, protocol, seconds) => {
        this.metrics.upstreamRequests.inc({ protocol });
        this.metrics.upstreamDuration.observe(seconds);
      },
    });
    this.names = new NameTable(entries, allocated, this.settings.search);
  }

  private async listen(): Promise<void> {
    const o = this.options;
    let port = o.port;
    for (const address of o.addresses ?? ['127.0.0.1', '::1']) {
      try {
        // With port 0 (tests), the first listener picks the port and the others share it.
        port = await this.listenUdp(address, port);
        await this.listenTcp(address, port);
        this.boundPort = port;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (address.includes(':') && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) {
          o.log.info({ address }, `DNS proxy: no ${address} in this namespace (IPv6 off); listening on IPv4 only`);
          continue;
        }
        throw new InterceptError(
          `DNS proxy cannot listen on ${address.includes(':') ? `[${address}]` : address}:${port} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); choose another --dns-port or stop what holds it`,
          { cause: err },
        );
      }
    }
  }

  private listenUdp(address: string, port: number): Promise<number> {
    const v6 = address.includes(':');
    const socket = createSocket(v6 ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', reject);
        socket.on('error', (err) => this.options.log.error({ err, address }, 'DNS proxy: UDP socket error'));
        socket.on('message', (message, peer) => void this.onDatagram(socket, message, peer));
        this.udp.push(socket);
        resolve(socket.address().port);
      });
    });
  }

  private listenTcp(address: string, port: number): Promise<void> {
    const server = createServer((socket) => this.onTcpConnection(socket));
    server.maxConnections = MAX_TCP_CONNECTIONS;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: address, port, ipv6Only: true }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.options.log.error({ err, address }, 'DNS proxy: TCP listener error'));
        this.tcp.push(server);
        resolve();
      });
    });
  }

  private async onDatagram(socket: UdpSocket, message: Buffer, peer: RemoteInfo): Promise<void> {
    const reply = await this.answer(message, 'udp', `${peer.address}:${peer.port}`);
    if (reply) socket.send(reply, peer.port, peer.address);
  }

  private onTcpConnection(socket: Socket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const reader = new TcpFrameReader(MAX_QUERY_BYTES);
    let pending = 0;
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = reader.push(chunk);
      } catch (err) {
        if (!(err instanceof FrameTooLargeError)) throw err;
        this.dropMalformed('tcp', peer, err.message);
        socket.destroy();
        return;
      }
      for (const message of messages) {
        pending++;
        if (pending >= MAX_PER_TCP_CONNECTION) socket.pause();
        void this.answer(message, 'tcp', peer).then((reply) => {
          pending--;
          if (reply && !socket.destroyed) socket.write(frame(reply));
          if (pending < MAX_PER_TCP_CONNECTION && socket.isPaused()) socket.resume();
        });
      }
    });
  }

  private dropMalformed(protocol: Protocol, peer: string, why: string): undefined {
    this.metrics.malformed.inc({ protocol });
    this.options.log.warn({ protocol, peer, reason: why }, `DNS proxy: dropped a malformed message from ${peer} over ${protocol}: ${why}`);
    return undefined;
  }

  /** The reply to one message, or undefined to drop it. Never rejects. */
  private async answer(message: Buffer, protocol: Protocol, peer: string): Promise<Buffer | undefined> {
    if (message.length > MAX_QUERY_BYTES) return this.dropMalformed(protocol, peer, `${message.length} bytes, more than ${MAX_QUERY_BYTES}`);
    let query: DecodedPacket;
    try {
      query = decode(message);
    } catch (err) {
      return this.dropMalformed(protocol, peer, `undecodable (${(err as Error).message})`);
    }
    // A response sent to us (a reflection, or a loop) or anything but one question is not a query we can serve.
    if (query.type !== 'query') return this.dropMalformed(protocol, peer, 'a response, not a query');
    const question = query.questions?.length === 1 ? query.questions[0]! : undefined;
    if (!question) return this.dropMalformed(protocol, peer, `${query.questions?.length ?? 0} questions, not one`);
    const limit = protocol === 'udp' ? udpLimit(query) : 0xffff;

    const local = this.localAnswer(query, question);
    if (local) {
      this.metrics.requests.inc({ protocol, answer: 'local' });
      return fit(local, query, limit);
    }
    const key = AnswerCache.key(question.name, question.type, question.class ?? 'IN');
    const cached = this.cache.get(key);
    if (cached) {
      try {
        const reply = encode({ ...cached, id: query.id });
        this.metrics.requests.inc({ protocol, answer: 'cache' });
        return reply.length <= limit ? reply : fit(truncated(cached, query), query, limit);
      } catch {
        // A record the codec cannot re-encode: ask upstream again, whose bytes pass unchanged.
      }
    }
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.metrics.requests.inc({ protocol, answer: 'servfail' });
      this.options.log.warn({ name: question.name, inFlight: this.inFlight }, `DNS proxy: SERVFAIL for ${question.name}: ${MAX_IN_FLIGHT} queries already wait for a nameserver`);
      return encode(servfail(query));
    }
    this.inFlight++;
    try {
      const upstream = await this.upstream.query(message, question, protocol === 'tcp');
      this.cache.store(key, upstream.packet);
      this.metrics.requests.inc({ protocol, answer: 'upstream' });
      const reply = Buffer.from(upstream.raw);
      reply.writeUInt16BE(query.id ?? 0, 0);
      return reply.length <= limit ? reply : fit(truncated(upstream.packet, query), query, limit);
    } catch (err) {
      this.metrics.requests.inc({ protocol, answer: 'servfail' });
      const why = err instanceof UpstreamError ? err.message : String(err);
      this.options.log.warn(
        { name: question.name, type: question.type, nameservers: this.upstream.nameservers, err: why },
        `DNS proxy: SERVFAIL for ${question.name} ${question.type}: no nameserver answered (last: ${why})`,
      );
      return encode(servfail(query));
    } finally {
      this.inFlight--;
    }
  }

  /** The answer for a registry name (A/AAAA of class IN only, as istio-agent), else undefined. */
  private localAnswer(query: DecodedPacket, question: Question): Packet | undefined {
    if ((question.type !== 'A' && question.type !== 'AAAA') || (question.class ?? 'IN') !== 'IN') return undefined;
    const found = this.names.lookup(question.name, question.type === 'A' ? 4 : 6);
    if (!found) return undefined;
    const answers: Answer[] = [];
    let owner = question.name;
    if (found.cname) {
      answers.push({ type: 'CNAME', name: question.name, ttl: LOCAL_TTL_S, data: found.cname });
      owner = found.cname;
    }
    for (const address of found.addresses) answers.push({ type: question.type, name: owner, ttl: LOCAL_TTL_S, data: address });
    return {
      type: 'response',
      id: query.id ?? 0,
      flags: AUTHORITATIVE_ANSWER | RECURSION_AVAILABLE | ((query.flags ?? 0) & RECURSION_DESIRED),
      questions: [question],
      answers,
      additionals: ednsOf(query),
    };
  }

  /** Closes every listener; queries in flight still get their replies where the socket allows. */
  close(): void {
    for (const s of this.udp) s.close();
    for (const s of this.tcp) s.close();
    this.udp.length = 0;
    this.tcp.length = 0;
  }
}

/** The reply size a UDP client accepts: 512 bytes, or its EDNS payload size (RFC 6891), at most 4096. */
function udpLimit(query: DecodedPacket): number {
  const opt = (query.additionals ?? []).find((a) => a.type === 'OPT');
  const size = opt && opt.type === 'OPT' ? opt.udpPayloadSize : 512;
  return Math.min(Math.max(size, 512), 4096);
}

/** An OPT record for the reply when the query had one (RFC 6891 §7). */
function ednsOf(query: DecodedPacket): Answer[] {
  return (query.additionals ?? []).some((a) => a.type === 'OPT')
    ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
    : [];
}

/** `packet` reduced to its header and question with TC set: the client asks again over TCP. */
function truncated(packet: Packet, query: DecodedPacket): Packet {
  return {
    type: 'response',
    id: query.id ?? 0,
    flags: (packet.flags ?? 0) | TRUNCATED_RESPONSE,
    questions: query.questions ?? [],
    answers: [],
    additionals: ednsOf(query),
  };
}

/** Encodes `packet`, truncated when it does not fit `limit`. */
function fit(packet: Packet, query: DecodedPacket, limit: number): Buffer {
  const bytes = encode(packet);
  return bytes.length <= limit ? bytes : encode(truncated(packet, query));
}

function servfail(query: DecodedPacket): Packet {
  return {
    type: 'response',
    id: query.id ?? 0,
    flags: RECURSION_AVAILABLE | ((query.flags ?? 0) & RECURSION_DESIRED) | RCODE_SERVFAIL,
    questions: query.questions ?? [],
    answers: [],
    additionals: ednsOf(query),
  };
}
