import * as grpc from '@grpc/grpc-js';
import { context, ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { type AccessTokenVerifier, InvalidTokenError } from '../auth/access-token.verifier.js';
import type { Principal } from '../auth/principal.js';
import { withRequestScope } from '../context/request-context.js';
import { ProblemError } from '../errors/problem.js';
import type { ExceptionTracker } from '../exceptions/exception.tracker.js';
import type { Component } from '../runtime/component.js';
import type { Tracing } from '../tracing/tracing.js';
import { extractTraceContext } from '../tracing/w3c.js';

/** A unary handler: the request and the caller's principal in, the response out. */
export type GrpcUnaryHandler<Req = never, Res = unknown> = (
  request: Req,
  call: { readonly metadata: grpc.Metadata; readonly principal: Principal | undefined },
) => Promise<Res>;

/** One gRPC service: its definition and a handler per unary method. */
export interface GrpcServiceBinding {
  readonly definition: grpc.ServiceDefinition;
  readonly handlers: Readonly<Record<string, GrpcUnaryHandler>>;
}

/** Options of {@link GrpcServer}. */
export interface GrpcServerOptions {
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly services: readonly GrpcServiceBinding[];
  readonly tracing: Tracing;
  readonly logger: Logger;
  /** When given, every call needs a valid bearer token in `authorization` metadata. */
  readonly verifier?: AccessTokenVerifier | undefined;
  readonly exceptions?: ExceptionTracker | undefined;
  readonly credentials?: grpc.ServerCredentials;
}

const STATUS_BY_HTTP: Record<number, grpc.status> = {
  400: grpc.status.INVALID_ARGUMENT,
  401: grpc.status.UNAUTHENTICATED,
  403: grpc.status.PERMISSION_DENIED,
  404: grpc.status.NOT_FOUND,
  409: grpc.status.ABORTED,
  412: grpc.status.FAILED_PRECONDITION,
  422: grpc.status.FAILED_PRECONDITION,
  429: grpc.status.RESOURCE_EXHAUSTED,
  503: grpc.status.UNAVAILABLE,
  504: grpc.status.DEADLINE_EXCEEDED,
};

/**
 * A gRPC server as a service component: each unary call runs in a server span continuing the
 * caller's trace from the metadata, with the caller's principal (when tokens are checked) and
 * correlation id in scope. `ProblemError`s become the matching status; unexpected errors are
 * tracked and answered INTERNAL.
 */
export class GrpcServer implements Component {
  readonly name = 'grpc-server';
  readonly #server = new grpc.Server();
  #port: number | undefined;

  constructor(private readonly options: GrpcServerOptions) {
    for (const binding of options.services) {
      const implementation: grpc.UntypedServiceImplementation = {};
      for (const [method, handler] of Object.entries(binding.handlers)) {
        const definition = binding.definition[method];
        if (!definition) throw new Error(`gRPC service has no method ${method}`);
        if (definition.requestStream || definition.responseStream)
          throw new Error(`gRPC method ${method} streams; only unary methods are wrapped`);
        implementation[method] = this.#wrap(definition.path, handler);
      }
      this.#server.addService(binding.definition, implementation);
    }
  }

  get port(): number {
    if (this.#port === undefined) throw new Error('gRPC server is not started');
    return this.#port;
  }

  async start(): Promise<void> {
    const address = `${this.options.host ?? '0.0.0.0'}:${this.options.port}`;
    this.#port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync(
        address,
        this.options.credentials ?? grpc.ServerCredentials.createInsecure(),
        (error, port) => (error ? reject(error) : resolve(port)),
      ),
    );
  }

  /** Stops taking calls and waits for those running (forced after 10 s). */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, 10_000);
      this.#server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  ready(): boolean {
    return this.#port !== undefined;
  }

  #wrap(path: string, handler: GrpcUnaryHandler): grpc.handleUnaryCall<unknown, unknown> {
    const { tracing, verifier, logger, exceptions } = this.options;
    return (call, callback) => {
      const headers = call.metadata.getMap() as Record<string, string>;
      const parent = extractTraceContext(headers, ROOT_CONTEXT);
      const correlationId =
        typeof headers['x-correlation-id'] === 'string' ? headers['x-correlation-id'] : undefined;
      void tracing
        .inSpan(
          path,
          SpanKind.SERVER,
          { 'rpc.system': 'grpc', 'rpc.method': path },
          withRequestScope({ correlationId }, parent),
          async () => {
            let principal: Principal | undefined;
            let token: string | undefined;
            if (verifier) {
              token = /^Bearer (.+)$/.exec(String(headers.authorization ?? ''))?.[1];
              if (!token)
                throw Object.assign(new Error('an access token is required'), {
                  code: grpc.status.UNAUTHENTICATED,
                });
              principal = await verifier.verify(token);
            }
            return context.with(withRequestScope({ principal, accessToken: token }), () =>
              handler(call.request as never, { metadata: call.metadata, principal }),
            );
          },
        )
        .then(
          (response) => callback(null, response),
          (error: unknown) => {
            if (error instanceof ProblemError)
              return callback({
                code: STATUS_BY_HTTP[error.kind.status] ?? grpc.status.UNKNOWN,
                details: error.message,
              });
            if (error instanceof InvalidTokenError)
              return callback({ code: grpc.status.UNAUTHENTICATED, details: error.message });
            const code = (error as { code?: unknown }).code;
            if (typeof code === 'number') return callback({ code, details: (error as Error).message });
            if (exceptions) void exceptions.capture(error, { grpc: path });
            else logger.error({ err: error, grpc: path }, 'unexpected error');
            callback({
              code: grpc.status.INTERNAL,
              details: 'an unexpected error occurred; it has been recorded',
            });
          },
        );
    };
  }
}
