import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { AuditLog } from '../audit/audit-log.js';
import { PROBLEMS, ProblemError } from '../errors/problem.js';
import type { ExceptionTracker } from '../exceptions/exception.tracker.js';
import type { Metrics } from '../metrics/metrics.js';
import { type AnyRoute, defineRoute, registerRoutes } from './route.js';

/** What the built-in routes need from the runtime. */
export interface BuiltinRouteDeps {
  readonly readiness: () => Promise<{ ready: boolean; report: Record<string, unknown> }>;
  readonly metrics: Metrics | undefined;
  readonly exceptions: ExceptionTracker | undefined;
  readonly audit: AuditLog | undefined;
  readonly adminRole: string;
}

const Fingerprint = z.object({
  fingerprint: z.string().regex(/^[0-9a-f]{32}$/, 'expected a 32-digit hex fingerprint'),
});

/**
 * `/health/live`, `/health/ready` and `/metrics` (public), and the admin API: `/admin/exceptions`
 * (list, get, resolve) and `/admin/audit` (query), for the admin role.
 */
export function registerBuiltinRoutes(app: FastifyInstance, deps: BuiltinRouteDeps): void {
  const admin = { roles: [deps.adminRole] };
  const routes: AnyRoute[] = [
    defineRoute({
      method: 'GET',
      url: '/health/live',
      auth: 'public',
      tags: ['health'],
      summary: 'Liveness: the process answers',
      handler: async () => ({ status: 'UP' }),
    }),
    defineRoute({
      method: 'GET',
      url: '/health/ready',
      auth: 'public',
      tags: ['health'],
      summary: 'Readiness: started, not stopping, and every check passes',
      handler: async (_request, reply) => {
        const { ready, report } = await deps.readiness();
        return reply.code(ready ? 200 : 503).send(report);
      },
    }),
  ];
  if (deps.metrics) {
    const metrics = deps.metrics;
    routes.push(
      defineRoute({
        method: 'GET',
        url: '/metrics',
        auth: 'public',
        tags: ['metrics'],
        summary: 'Prometheus metrics',
        handler: async (_request, reply) =>
          reply.type(metrics.registry.contentType).send(await metrics.scrape()),
      }),
    );
  }
  if (deps.exceptions) {
    const store = deps.exceptions.store;
    routes.push(
      defineRoute({
        method: 'GET',
        url: '/admin/exceptions',
        auth: admin,
        tags: ['admin'],
        summary: 'Tracked exceptions, most recent first',
        schema: {
          querystring: z.strictObject({
            resolved: z.stringbool().optional(),
            limit: z.coerce.number().int().min(1).max(500).optional(),
          }),
        },
        handler: async ({ query }) => ({ exceptions: await store.list(query) }),
      }),
      defineRoute({
        method: 'GET',
        url: '/admin/exceptions/:fingerprint',
        auth: admin,
        tags: ['admin'],
        schema: { params: Fingerprint },
        handler: async ({ params }) => {
          const found = await store.get(params.fingerprint);
          if (!found) throw new ProblemError(PROBLEMS.notFound, `no exception ${params.fingerprint}`);
          return found;
        },
      }),
      defineRoute({
        method: 'POST',
        url: '/admin/exceptions/:fingerprint/resolve',
        auth: admin,
        tags: ['admin'],
        summary: 'Marks an exception resolved; it reopens if it happens again',
        schema: { params: Fingerprint },
        handler: async (request, reply) => {
          const by = request.principal?.subject ?? 'anonymous';
          if (!(await store.resolve(request.params.fingerprint, by)))
            throw new ProblemError(PROBLEMS.notFound, `no exception ${request.params.fingerprint}`);
          return reply.code(204).send();
        },
      }),
    );
  }
  if (deps.audit) {
    const audit = deps.audit;
    routes.push(
      defineRoute({
        method: 'GET',
        url: '/admin/audit',
        auth: admin,
        tags: ['admin'],
        summary: 'Audit entries matching the filters, newest first',
        schema: {
          querystring: z.strictObject({
            aggregateType: z.string().min(1).optional(),
            aggregateId: z.string().min(1).optional(),
            actor: z.string().min(1).optional(),
            action: z.string().min(1).optional(),
            before: z.string().regex(/^\d+$/, 'expected an entry id').optional(),
            limit: z.coerce.number().int().min(1).max(500).optional(),
          }),
        },
        handler: async ({ query }) => ({ entries: await audit.query(query) }),
      }),
    );
  }
  registerRoutes(app, routes);
}
