import { type Context, context, createContextKey } from '@opentelemetry/api';
import type { Principal } from '../auth/principal.js';

/** Who a request or message acts for, the conversation it belongs to, and the caller's token. */
export interface RequestScope {
  readonly principal?: Principal | undefined;
  readonly correlationId?: string | undefined;
  /** The bearer token the principal came from, for calls made on the caller's behalf. */
  readonly accessToken?: string | undefined;
}

const SCOPE = createContextKey('ferry.request-scope');

/**
 * Who a request or message acts for and which conversation it belongs to travel in the same
 * OpenTelemetry context as the trace, so one `context.with` carries all of it through `await`s.
 * Given values are laid over those already in `parent`; one context entry holds them all.
 */
export function withRequestScope(scope: RequestScope, parent: Context = context.active()): Context {
  const current = parent.getValue(SCOPE) as RequestScope | undefined;
  const next: RequestScope = {
    principal: scope.principal ?? current?.principal,
    correlationId: scope.correlationId ?? current?.correlationId,
    accessToken: scope.accessToken ?? current?.accessToken,
  };
  return parent.setValue(SCOPE, next);
}

function scopeOf(active: Context): RequestScope | undefined {
  return active.getValue(SCOPE) as RequestScope | undefined;
}

/** The principal the current request or message acts for, if any. */
export function currentPrincipal(active: Context = context.active()): Principal | undefined {
  return scopeOf(active)?.principal;
}

/** The correlation id of the current request or message, if any. */
export function currentCorrelationId(active: Context = context.active()): string | undefined {
  return scopeOf(active)?.correlationId;
}

/** The bearer token of the current request, if it had one; clients forward it downstream. */
export function currentAccessToken(active: Context = context.active()): string | undefined {
  return scopeOf(active)?.accessToken;
}
