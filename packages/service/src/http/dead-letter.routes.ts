import type { DeadLetter, DeadLetterStore } from '@ferry/core';
import { z } from 'zod';
import { PROBLEMS, ProblemError } from '../errors/problem.js';
import { type AnyRoute, defineRoute } from './route.js';

const Id = z.object({ id: z.string().regex(/^\d{1,18}$/, 'expected a dead letter id (digits)') });
const Query = z.strictObject({
  group: z.string().min(1).optional(),
  channel: z.string().min(1).optional(),
  includeReplayed: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

const view = (d: DeadLetter) => ({
  id: d.id,
  group: d.group,
  reason: d.reason,
  error: d.error ?? null,
  attempts: d.attempts,
  deadLetteredAt: d.deadLetteredAt,
  replayedAt: d.replayedAt ?? null,
  message: d.message,
});

/**
 * The dead-letter channel's admin API, for a service's routes: list (`GET /admin/dead-letters`,
 * filtered by group and channel), read (`GET /admin/dead-letters/:id`) and replay
 * (`POST /admin/dead-letters/:id/replay`, which sends the original message back through the
 * outbox). Only callers with `role` (default `admin`) may use it.
 *
 * @example
 * createService({ name: 'kitchen', routes: (ctx) => [...kitchenRoutes(ctx), ...deadLetterRoutes(messaging.deadLetters)] });
 */
export function deadLetterRoutes(store: DeadLetterStore, options: { role?: string } = {}): AnyRoute[] {
  const auth = { roles: [options.role ?? 'admin'] };
  const find = async (id: string) => {
    const found = await store.get(id);
    if (!found) throw new ProblemError(PROBLEMS.notFound, `dead letter ${id} does not exist`);
    return found;
  };
  return [
    defineRoute({
      method: 'GET',
      url: '/admin/dead-letters',
      auth,
      tags: ['admin'],
      summary: 'Dead letters, oldest first',
      schema: { querystring: Query },
      handler: async ({ query }) => ({ deadLetters: (await store.list(query)).map(view) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/admin/dead-letters/:id',
      auth,
      tags: ['admin'],
      summary: 'One dead letter with its message, reason and error',
      schema: { params: Id },
      handler: async ({ params }) => view(await find(params.id)),
    }),
    defineRoute({
      method: 'POST',
      url: '/admin/dead-letters/:id/replay',
      auth,
      tags: ['admin'],
      summary: 'Send a dead letter back to its channel',
      schema: { params: Id },
      handler: async ({ params }, reply) => {
        await find(params.id);
        await store.replay(params.id);
        return reply.code(202).send(view(await find(params.id)));
      },
    }),
  ];
}
