/**
 * A gRPC Echo service for the HTTP/2 proxy tests, without protoc (messages are UTF-8 strings):
 * its method definitions, a @grpc/grpc-js server on loopback for the test's lifetime, and a
 * client that reaches it through the proxy under a given authority.
 */
import type { ExecutionContext } from 'ava';
import * as grpc from '@grpc/grpc-js';

const str = { serialize: (s: string) => Buffer.from(s), deserialize: (b: Buffer) => b.toString() };
const method = (path: string, requestStream: boolean, responseStream: boolean) => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: str.serialize,
  requestDeserialize: str.deserialize,
  responseSerialize: str.serialize,
  responseDeserialize: str.deserialize,
});
export const Echo = {
  unary: method('/test.Echo/Unary', false, false),
  serverStream: method('/test.Echo/ServerStream', false, true),
  clientStream: method('/test.Echo/ClientStream', true, false),
  bidi: method('/test.Echo/Bidi', true, true),
  slow: method('/test.Echo/Slow', false, false),
} satisfies grpc.ServiceDefinition;

/** Echo's handlers by method name, as grpc.Server.addService takes them. */
export type EchoHandlers = Partial<Record<keyof typeof Echo, grpc.UntypedHandleCall>>;

/** The Echo handlers every test starts from: answer, stream three messages, sum, echo back, answer after 2 s. */
export const echoHandlers: EchoHandlers = {
  unary: (call: grpc.ServerUnaryCall<string, string>, cb: grpc.sendUnaryData<string>) => cb(null, `hi ${call.request}`),
  serverStream: (call: grpc.ServerWritableStream<string, string>) => {
    for (let i = 0; i < 3; i++) call.write(`${call.request} ${i}`);
    call.end();
  },
  clientStream: (call: grpc.ServerReadableStream<string, string>, cb: grpc.sendUnaryData<string>) => {
    const got: string[] = [];
    call.on('data', (d: string) => got.push(d));
    call.on('end', () => cb(null, got.join('+')));
  },
  bidi: (call: grpc.ServerDuplexStream<string, string>) => {
    call.on('data', (d: string) => call.write(`re ${d}`));
    call.on('end', () => call.end());
  },
  slow: (_call: grpc.ServerUnaryCall<string, string>, cb: grpc.sendUnaryData<string>) => {
    setTimeout(() => cb(null, 'late'), 2000).unref();
  },
};

/** An Echo server on 127.0.0.1 (`handlers` replace the default ones), shut down when the test ends; returns its port. */
export async function grpcServer(t: ExecutionContext, handlers: EchoHandlers = {}): Promise<number> {
  const server = new grpc.Server();
  server.addService(Echo, { ...echoHandlers, ...handlers } as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  t.teardown(() => server.forceShutdown());
  return port;
}

/** An Echo client through the proxy at `port`, asking for `authority`; closed when the test ends. */
export function echoClient(t: ExecutionContext, port: number, authority: string) {
  const Client = grpc.makeGenericClientConstructor(Echo, 'Echo');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.default_authority': authority,
  }) as unknown as Record<string, (...args: unknown[]) => unknown> & grpc.Client;
  t.teardown(() => client.close());
  return client;
}

/** One unary call of `client`: the answer, or the gRPC error. */
export function unaryCall(client: ReturnType<typeof echoClient>, name: keyof typeof Echo, request: string, metadata = new grpc.Metadata()): Promise<{ value?: string; error?: grpc.ServiceError }> {
  return new Promise((resolve) =>
    client[name]!(request, metadata, (error: grpc.ServiceError | null, value: string) => resolve(error ? { error } : { value })),
  );
}
