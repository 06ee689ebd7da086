import type { FastifyRequest } from 'fastify';

const kRoute = Symbol('ferry.route');

/** What the hooks need from a request's route, read once per request. */
export interface RouteInfo {
  /** The route template, `unmatched` for 404s. */
  readonly url: string;
  readonly config: FastifyRequest['routeOptions']['config'];
}

/** The request's route template and config (Fastify builds `routeOptions` anew on each read). */
export function routeInfo(request: FastifyRequest): RouteInfo {
  const scoped = request as FastifyRequest & { [kRoute]?: RouteInfo };
  let info = scoped[kRoute];
  if (!info) {
    const options = request.routeOptions;
    info = { url: options.url ?? 'unmatched', config: options.config };
    scoped[kRoute] = info;
  }
  return info;
}
