import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { z } from 'zod';

const PART_NAMES = ['params', 'querystring', 'body', 'headers'] as const;

function toJsonSchema(schema: unknown, io: 'input' | 'output'): unknown {
  if (!(schema instanceof z.ZodType)) return schema;
  const { $schema: _ignored, ...json } = z.toJSONSchema(schema, {
    target: 'openapi-3.0',
    io,
    unrepresentable: 'any',
  });
  return json;
}

/** Turns a route's zod schemas into the JSON Schema OpenAPI expects. */
export function openApiSchemaOf(schema: FastifySchema): FastifySchema {
  const converted: Record<string, unknown> = { ...schema };
  for (const part of PART_NAMES) if (schema[part]) converted[part] = toJsonSchema(schema[part], 'input');
  if (schema.response && typeof schema.response === 'object') {
    converted.response = Object.fromEntries(
      Object.entries(schema.response as Record<string, unknown>).map(([status, s]) => [
        status,
        toJsonSchema(s, 'output'),
      ]),
    );
  }
  return converted as FastifySchema;
}

/**
 * Publishes the OpenAPI document of every route with schemas at `/docs/json` and the Swagger UI
 * at `/docs`, both public. Register before the routes, so it sees them.
 */
export async function registerOpenApi(
  app: FastifyInstance,
  info: { readonly title: string; readonly version: string; readonly description?: string | undefined },
): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info,
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      },
      security: [{ bearer: [] }],
    },
    transform: ({ schema, url }) => ({ schema: schema ? openApiSchemaOf(schema) : schema, url }),
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: false } });
}
