import { type Context, context, createContextKey } from '@opentelemetry/api';
import type { Principal } from '../auth/principal.js';

const PRINCIPAL = createContextKey('ferry.principal');
const CORRELATION_ID = createContextKey('ferry.correlation-id');
const ACCESS_TOKEN = createContextKey('ferry.access-token');

/**
 * Who a request or message acts for and which conversation it belongs to travel in the same
 * OpenTelemetry context as the trace, so one `context.with` carries all three through `await`s.
 */
export function withRequestScope(
  scope: {
    readonly principal?: Principal | undefined;
    readonly correlationId?: string | undefined;
    /** The bearer token the principal came from, for calls made on the caller's behalf. */
    readonly accessToken?: string | undefined;
  },
  parent: Context = context.active(),
): Context {
  let next = parent;
  if (scope.principal) next = next.setValue(PRINCIPAL, scope.principal);
  if (scope.correlationId) next = next.setValue(CORRELATION_ID, scope.correlationId);
  if (scope.accessToken) next = next.setValue(ACCESS_TOKEN, scope.accessToken);
  return next;
}

/** The principal the current request or message acts for, if any. */
export function currentPrincipal(active: Context = context.active()): Principal | undefined {
  return active.getValue(PRINCIPAL) as Principal | undefined;
}

/** The correlation id of the current request or message, if any. */
export function currentCorrelationId(active: Context = context.active()): string | undefined {
  return active.getValue(CORRELATION_ID) as string | undefined;
}

/** The bearer token of the current request, if it had one; clients forward it downstream. */
export function currentAccessToken(active: Context = context.active()): string | undefined {
  return active.getValue(ACCESS_TOKEN) as string | undefined;
}
