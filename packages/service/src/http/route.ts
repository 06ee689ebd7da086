import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  FastifySchemaCompiler,
  FastifySerializerCompiler,
  FastifyTypeProvider,
  HTTPMethods,
} from 'fastify';
import { z } from 'zod';
import type { RouteAuth } from './auth.hook.js';

/**
 * Fastify type provider for zod 4 schemas: request parts are typed as the schema's output,
 * replies as its input.
 */
export interface ZodTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown;
  serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
}

/** The zod schemas of a route's request parts and its responses by status. */
export interface RouteSchema {
  readonly params?: z.ZodType;
  readonly querystring?: z.ZodType;
  readonly body?: z.ZodType;
  readonly headers?: z.ZodType;
  readonly response?: Readonly<Record<number, z.ZodType>>;
}

type Out<T> = T extends z.ZodType ? z.output<T> : unknown;
type ReplyOf<S extends RouteSchema> =
  S['response'] extends Readonly<Record<number, z.ZodType>>
    ? z.input<S['response'][keyof S['response']]>
    : unknown;

/** A request whose params, query, body and headers are typed by the route's schema. */
export type RouteRequest<S extends RouteSchema> = Omit<FastifyRequest, 'params' | 'query' | 'body'> & {
  readonly params: Out<S['params']>;
  readonly query: Out<S['querystring']>;
  readonly body: Out<S['body']>;
};

/** A route: method, URL, schemas (validated and published in OpenAPI), authorization and handler. */
export interface RouteDefinition<S extends RouteSchema = RouteSchema> {
  readonly method: HTTPMethods | HTTPMethods[];
  readonly url: string;
  readonly schema?: S;
  /** Who may call it; default any authenticated caller. */
  readonly auth?: RouteAuth;
  readonly summary?: string;
  readonly description?: string;
  readonly tags?: readonly string[];
  /** Return the body (validated against the response schema for the status), or use `reply`. */
  handler(request: RouteRequest<S>, reply: FastifyReply): Promise<ReplyOf<S> | FastifyReply | undefined>;
}

/** Any route, whatever its schema: what route lists hold. */
export interface AnyRoute {
  readonly method: HTTPMethods | HTTPMethods[];
  readonly url: string;
  readonly schema?: RouteSchema;
  readonly auth?: RouteAuth;
  readonly summary?: string;
  readonly description?: string;
  readonly tags?: readonly string[];
  handler(request: never, reply: FastifyReply): Promise<unknown>;
}

/**
 * Declares a route with types inferred from its zod schemas. Use `z.strictObject` for bodies
 * that must refuse unknown fields.
 * @example
 * defineRoute({
 *   method: 'GET', url: '/orders/:orderId', auth: { roles: ['consumer'] },
 *   schema: { params: z.object({ orderId: z.uuid() }), response: { 200: OrderView } },
 *   handler: async ({ params }) => orders.view(params.orderId),
 * });
 */
export function defineRoute<S extends RouteSchema>(route: RouteDefinition<S>): RouteDefinition<S> {
  return route;
}

/** Adds declared routes to a Fastify instance. */
export function registerRoutes(app: FastifyInstance, routes: readonly AnyRoute[]): void {
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.url,
      schema: {
        ...route.schema,
        summary: route.summary,
        description: route.description,
        tags: route.tags ? [...route.tags] : undefined,
      },
      config: { auth: route.auth },
      handler: route.handler as unknown as (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>,
    });
  }
}

function isZod(schema: unknown): schema is z.ZodType {
  return schema instanceof z.ZodType;
}

/** Validates request parts with their zod schemas; a failure carries the zod error to the error handler. */
export const zodValidatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, url, method }) => {
  if (!isZod(schema)) throw new Error(`${method} ${url}: route schemas must be zod schemas`);
  return (data) => {
    const result = schema.safeParse(data);
    return result.success ? { value: result.data } : { error: result.error };
  };
};

/** Thrown when a handler's reply does not match its response schema: the service broke its contract. */
export class ResponseContractError extends Error {
  override readonly name = 'ResponseContractError';
}

/** Serializes replies through their zod response schema, so nothing undeclared leaves the service. */
export const zodSerializerCompiler: FastifySerializerCompiler<unknown> = ({ schema, url, method }) => {
  if (!isZod(schema)) return (data) => JSON.stringify(data);
  return (data) => {
    const result = schema.safeParse(data);
    if (!result.success)
      throw new ResponseContractError(
        `${method} ${url}: reply does not match its schema: ${result.error.message}`,
      );
    return JSON.stringify(result.data);
  };
};
