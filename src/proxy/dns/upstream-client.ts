/**
 * Asks the resolv.conf nameservers, in order, what the DNS proxy cannot answer itself. Each
 * query goes out on a fresh socket (random source port) with a fresh random id, and only a
 * reply from that nameserver with that id and the same question is accepted. A UDP reply with
 * the TC bit is asked again over TCP (RFC 7766), so the proxy always holds the whole answer.
 * The sockets are created by the proxy after it dropped to its uid, which the capture rules
 * exempt: forwarded queries leave the pod instead of coming back to the proxy.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { EventEmitter } from 'node:events';
import { connect, isIP } from 'node:net';
import { decode, type DecodedPacket, type Question } from 'dns-packet';
import { frame, TcpFrameReader } from './tcp-frames.js';

/** Why a nameserver gave no usable answer (a metric label). */
export type UpstreamFailure = 'timeout' | 'refused' | 'error' | 'malformed';

export class UpstreamError extends Error {
  override name = 'UpstreamError';
  constructor(
    readonly server: string,
    readonly reason: UpstreamFailure,
    detail: string,
  ) {
    super(`${server}: ${detail}`);
  }
}

export interface UpstreamAnswer {
  /** The reply as the nameserver sent it, with the id it was asked with. */
  packet: DecodedPacket;
  /** Its bytes, to pass on unchanged but for the id (re-encoding could lose record types the codec does not know). */
  raw: Buffer;
  server: string;
  protocol: 'udp' | 'tcp';
}

export interface UpstreamClientOptions {
  nameservers: readonly string[];
  timeoutMs: number;
  /** Port the nameservers listen on; 53 except in tests. */
  port?: number;
  /** Called per failed attempt, so each failure is counted and logged once. */
  onFailure?: (err: UpstreamError, protocol: 'udp' | 'tcp') => void;
  onAttempt?: (server: string, protocol: 'udp' | 'tcp', seconds: number) => void;
}

const MAX_UDP_REPLY = 65_535;

export class UpstreamClient {
  constructor(private readonly options: UpstreamClientOptions) {}

  get nameservers(): readonly string[] {
    return this.options.nameservers;
  }

  /**
   * Sends `query` (an encoded DNS message; its id is replaced) to each nameserver in turn until
   * one answers; over TCP from the start when `tcp`. `question` is the query's, decoded.
   * Rejects with the last failure.
   */
  async query(query: Buffer, question: Question, tcp: boolean): Promise<UpstreamAnswer> {
    let last: UpstreamError | undefined;
    if (this.options.nameservers.length === 0) throw new UpstreamError('-', 'error', 'resolv.conf lists no nameserver');
    for (const server of this.options.nameservers) {
      try {
        if (!tcp) {
          const udp = await this.attempt(server, 'udp', query, question);
          if (!udp.packet.flag_tc) return { ...udp, server, protocol: 'udp' };
        }
        return { ...(await this.attempt(server, 'tcp', query, question)), server, protocol: 'tcp' };
      } catch (err) {
        if (!(err instanceof UpstreamError)) throw err;
        last = err;
      }
    }
    throw last!;
  }

  private async attempt(server: string, protocol: 'udp' | 'tcp', query: Buffer, question: Question): Promise<{ packet: DecodedPacket; raw: Buffer }> {
    const id = randomInt(0x10000);
    const message = Buffer.from(query);
    message.writeUInt16BE(id, 0);
    const started = performance.now();
    try {
      const reply = protocol === 'udp' ? await this.udp(server, message) : await this.tcp(server, message);
      let packet: DecodedPacket;
      try {
        packet = decode(reply);
      } catch (err) {
        throw new UpstreamError(server, 'malformed', `undecodable reply (${(err as Error).message})`);
      }
      if (packet.id !== id || packet.type !== 'response' || !sameQuestion(question, packet.questions?.[0])) {
        throw new UpstreamError(server, 'malformed', 'reply does not match the query (id or question)');
      }
      return { packet, raw: reply };
    } catch (err) {
      const failure =
        err instanceof UpstreamError ? err : new UpstreamError(server, 'error', (err as Error).message ?? String(err));
      this.options.onFailure?.(failure, protocol);
      throw failure;
    } finally {
      this.options.onAttempt?.(server, protocol, (performance.now() - started) / 1000);
    }
  }

  private udp(server: string, message: Buffer): Promise<Buffer> {
    const port = this.options.port ?? 53;
    return this.exchange(server, 'UDP', (answered) => {
      const socket = createSocket({ type: isIP(server) === 6 ? 'udp6' : 'udp4', recvBufferSize: MAX_UDP_REPLY });
      // Others' datagrams with a wrong id are ignored; only the awaited one ends the wait.
      socket.on('message', (reply) => {
        if (reply.length >= 2 && reply.readUInt16BE(0) === message.readUInt16BE(0)) answered(reply);
      });
      // A connected socket hears the nameserver only, and ICMP "port unreachable" as ECONNREFUSED.
      socket.connect(port, server, () => socket.send(message));
      return { socket, close: () => socket.close() };
    });
  }

  private tcp(server: string, message: Buffer): Promise<Buffer> {
    const port = this.options.port ?? 53;
    return this.exchange(server, 'TCP', (answered, failed) => {
      const socket = connect({ host: server, port });
      const reader = new TcpFrameReader(0xffff);
      socket.on('connect', () => socket.write(frame(message)));
      socket.on('data', (chunk) => {
        const [reply] = reader.push(chunk);
        if (reply) answered(Buffer.from(reply));
      });
      socket.on('end', () => failed(new UpstreamError(server, 'error', 'TCP: closed before a reply')));
      return { socket, close: () => socket.destroy() };
    });
  }

  /**
   * One query's wait for its reply, the same over both transports: `open` makes the socket and
   * sends; the first of its reply, a socket error or the timeout settles the wait and closes
   * the socket.
   */
  private exchange(
    server: string,
    transport: 'UDP' | 'TCP',
    open: (answered: (reply: Buffer) => void, failed: (err: UpstreamError) => void) => { socket: EventEmitter; close: () => void },
  ): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const done = (err: Error | undefined, reply?: Buffer) => {
        clearTimeout(timer);
        close();
        if (err) reject(err);
        else resolve(reply!);
      };
      const { socket, close } = open(
        (reply) => done(undefined, reply),
        (err) => done(err),
      );
      const timer = setTimeout(
        () => done(new UpstreamError(server, 'timeout', `no ${transport} reply within ${this.options.timeoutMs} ms`)),
        this.options.timeoutMs,
      );
      socket.on('error', (err: NodeJS.ErrnoException) =>
        done(new UpstreamError(server, err.code === 'ECONNREFUSED' ? 'refused' : 'error', `${transport}: ${err.message}`)),
      );
    });
  }
}

/** True when a reply answers the question asked (names compared case-insensitively). */
function sameQuestion(asked: Question, answered: Question | undefined): boolean {
  return !!answered && asked.name.toLowerCase() === answered.name.toLowerCase() && asked.type === answered.type && asked.class === answered.class;
}
