import { context } from '@opentelemetry/api';
import type { onRequestHookHandler } from 'fastify';
import {
  type AccessTokenVerifier,
  InvalidTokenError,
  KeySetUnavailableError,
} from '../auth/access-token.verifier.js';
import { hasRoles, hasScopes, type Principal } from '../auth/principal.js';
import { withRequestScope } from '../context/request-context.js';
import { PROBLEMS, ProblemError } from '../errors/problem.js';
import { routeInfo } from './observability.hooks.js';

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

/**
 * Checks the bearer token before the body is read, so unauthenticated callers cost little:
 * 401 for a missing or invalid token (with `WWW-Authenticate`), 403 for missing roles or scopes,
 * 503 when the issuer's keys cannot be fetched. The principal becomes `request.principal` and
 * the current principal of everything the request does.
 */
export function authHook(verifier: AccessTokenVerifier | undefined): onRequestHookHandler {
  return (request, reply, done) => {
    const route = routeInfo(request);
    const auth = route.config?.auth ?? 'authenticated';
    if (!verifier || auth === 'public' || route.url === 'unmatched') return done();
    const header = request.headers.authorization;
    if (!header) {
      reply.header('www-authenticate', 'Bearer');
      return done(
        new ProblemError(PROBLEMS.unauthorized, 'an access token is required (Authorization: Bearer)'),
      );
    }
    const match = BEARER.exec(header);
    if (!match) {
      reply.header('www-authenticate', 'Bearer error="invalid_request"');
      return done(
        new ProblemError(PROBLEMS.invalidToken, 'Authorization header is not a bearer token', {
          reason: 'malformed',
        }),
      );
    }
    verifier.verify(match[1]!).then(
      (principal) => {
        if (typeof auth === 'object') {
          if (auth.roles && !hasRoles(principal, auth.roles))
            return done(new ProblemError(PROBLEMS.forbidden, `requires role(s): ${auth.roles.join(', ')}`));
          if (auth.scopes && !hasScopes(principal, auth.scopes)) {
            reply.header(
              'www-authenticate',
              `Bearer error="insufficient_scope", scope="${auth.scopes.join(' ')}"`,
            );
            return done(new ProblemError(PROBLEMS.forbidden, `requires scope(s): ${auth.scopes.join(', ')}`));
          }
        }
        request.principal = principal;
        context.with(withRequestScope({ principal, accessToken: match[1] }), done);
      },
      (error: unknown) => {
        if (error instanceof InvalidTokenError) {
          reply.header(
            'www-authenticate',
            `Bearer error="invalid_token", error_description="${error.message}"`,
          );
          return done(new ProblemError(PROBLEMS.invalidToken, error.message, { reason: error.reason }));
        }
        if (error instanceof KeySetUnavailableError)
          return done(
            new ProblemError(PROBLEMS.unavailable, 'access tokens cannot be checked now', { reason: 'jwks' }),
          );
        done(error as Error);
      },
    );
  };
}
