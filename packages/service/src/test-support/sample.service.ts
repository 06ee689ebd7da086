import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { createService, defineRoute, PROBLEMS, ProblemError, type ServiceDeclaration } from '../index.js';
import { LogCapture } from '../testing/index.js';

const LineItem = z.strictObject({ menuItemId: z.string().min(1), quantity: z.number().int().positive() });
const CreateOrder = z.strictObject({
  consumerId: z.uuid(),
  restaurantId: z.uuid(),
  lineItems: z.array(LineItem).min(1),
});
const OrderView = z.object({ orderId: z.uuid(), state: z.string(), consumerId: z.uuid() });

/**
 * A small order service used by the runtime's tests: typed routes with strict bodies, an id in
 * the path, role checks, a public hello route and one that fails unexpectedly.
 */
export function sampleDeclaration(overrides: Partial<ServiceDeclaration> = {}): ServiceDeclaration {
  const orders = new Map<string, z.output<typeof OrderView>>();
  return {
    name: 'sample-orders',
    version: '1.2.3',
    routes: [
      defineRoute({
        method: 'POST',
        url: '/orders',
        auth: { roles: ['consumer'] },
        summary: 'Creates an order',
        schema: { body: CreateOrder, response: { 201: z.object({ orderId: z.uuid() }) } },
        handler: async ({ body }, reply) => {
          const orderId = randomUUID();
          orders.set(orderId, { orderId, state: 'APPROVAL_PENDING', consumerId: body.consumerId });
          return reply.code(201).send({ orderId });
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/orders/:orderId',
        schema: { params: z.object({ orderId: z.uuid() }), response: { 200: OrderView } },
        handler: async ({ params }) => {
          const order = orders.get(params.orderId);
          if (!order) throw new ProblemError(PROBLEMS.notFound, `order ${params.orderId} does not exist`);
          return order;
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/hello',
        schema: { response: { 200: z.object({ hello: z.string() }) } },
        handler: async (request) => ({ hello: request.principal?.subject ?? 'world' }),
      }),
      defineRoute({
        method: 'GET',
        url: '/public/ping',
        auth: 'public',
        handler: async () => ({ pong: true }),
      }),
      defineRoute({
        method: 'GET',
        url: '/boom',
        auth: 'public',
        handler: async () => {
          throw new TypeError('the flux capacitor is empty');
        },
      }),
    ],
    ...overrides,
  };
}

/** Settings for a test service on a free port of 127.0.0.1. */
export function testSettings(extra: Record<string, string> = {}): Record<string, string> {
  return { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', OPENAPI_DOCS_ENABLED: 'true', ...extra };
}

/** Creates and starts the sample service with captured logs. */
export async function startSample(
  settings: Record<string, string>,
  overrides: Partial<ServiceDeclaration> = {},
) {
  const logs = new LogCapture();
  const service = await createService({
    ...sampleDeclaration(overrides),
    configLayers: { env: testSettings(settings) },
    logDestination: logs,
  });
  await service.start();
  return { service, logs };
}
