import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  type AccessTokenVerifier,
  InvalidTokenError,
  KeySetUnavailableError,
} from '../auth/access-token.verifier.js';
import { hasRoles, hasScopes, type Principal } from '../auth/principal.js';
import { PROBLEMS, ProblemError } from '../errors/problem.js';
import { routeInfo } from './route-info.js';

/**
 * Who may call a route: `public` (no token looked at), `authenticated` (any valid token; the
 * default), or the roles and scopes the caller's token must all carry.
 */
export type RouteAuth =
  | 'public'
  | 'authenticated'
  | { readonly roles?: readonly string[] | undefined; readonly scopes?: readonly string[] | undefined };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; see {@link RouteAuth}. */
    auth?: RouteAuth | undefined;
  }
  interface FastifyRequest {
    /** The verified caller; `undefined` on public routes and with AUTH_MODE=none. */
    principal: Principal | undefined;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9\-_=]+\.[A-Za-z0-9\-_=]*\.?[A-Za-z0-9\-_.+/=]*)$/;

/** A request's verified caller. */
export interface Authenticated {
  readonly principal: Principal;
  readonly token: string;
}

/**
 * Checks the bearer token before the body is read, so unauthenticated callers cost little:
 * 401 for a missing or invalid token (with `WWW-Authenticate`), 403 for missing roles or scopes,
 * 503 when the issuer's keys cannot be fetched (thrown or rejected as `ProblemError`). Returns
 * `undefined` when the route needs no token (or tokens are not checked), else the caller.
 */
export function authenticate(
  request: FastifyRequest,
  reply: FastifyReply,
  verifier: AccessTokenVerifier | undefined,
): Authenticated | Promise<Authenticated> | undefined {
  const route = routeInfo(request);
  const auth = route.config?.auth ?? 'authenticated';
  if (!verifier || auth === 'public' || route.url === 'unmatched') return undefined;
  const header = request.headers.authorization;
  if (!header) {
    reply.header('www-authenticate', 'Bearer');
    throw new ProblemError(PROBLEMS.unauthorized, 'an access token is required (Authorization: Bearer)');
  }
  // A token verified before is the same string as then, so its format needs no second look.
  if (header.startsWith('Bearer ')) {
    const token = header.slice(7);
    const remembered = verifier.remembered(token);
    if (remembered) return admit(request, reply, auth, remembered, token);
  }
  const match = BEARER.exec(header);
  if (!match) {
    reply.header('www-authenticate', 'Bearer error="invalid_request"');
    throw new ProblemError(PROBLEMS.invalidToken, 'Authorization header is not a bearer token', {
      reason: 'malformed',
    });
  }
  const token = match[1]!;
  return verifier.verify(token).then(
    (principal) => admit(request, reply, auth, principal, token),
    (error: unknown) => {
      if (error instanceof InvalidTokenError) {
        reply.header(
          'www-authenticate',
          `Bearer error="invalid_token", error_description="${error.message}"`,
        );
        throw new ProblemError(PROBLEMS.invalidToken, error.message, { reason: error.reason });
      }
      if (error instanceof KeySetUnavailableError)
        throw new ProblemError(PROBLEMS.unavailable, 'access tokens cannot be checked now', {
          reason: 'jwks',
        });
      throw error;
    },
  );
}

/** Checks the route's roles and scopes against a verified principal, and makes it the request's. */
function admit(
  request: FastifyRequest,
  reply: FastifyReply,
  auth: RouteAuth,
  principal: Principal,
  token: string,
): Authenticated {
  if (typeof auth === 'object') {
    if (auth.roles && !hasRoles(principal, auth.roles))
      throw new ProblemError(PROBLEMS.forbidden, `requires role(s): ${auth.roles.join(', ')}`);
    if (auth.scopes && !hasScopes(principal, auth.scopes)) {
      reply.header('www-authenticate', `Bearer error="insufficient_scope", scope="${auth.scopes.join(' ')}"`);
      throw new ProblemError(PROBLEMS.forbidden, `requires scope(s): ${auth.scopes.join(', ')}`);
    }
  }
  request.principal = principal;
  return { principal, token };
}
