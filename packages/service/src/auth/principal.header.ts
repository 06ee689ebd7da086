import type { MessageHeaders } from '@ferry/core';
import type { Principal } from './principal.js';

/**
 * The message header (in `extra`) that carries the principal a message acts for, so that a saga
 * participant knows on whose behalf it works. Its value is JSON:
 * `{"sub":"user-1","roles":["consumer"],"scopes":["orders:write"],"iss":"https://auth"}`.
 * It carries the verified identity, not the token, which would expire before a saga ends.
 */
export const PRINCIPAL_HEADER = 'principal';

/** The `extra` headers that carry `principal`; empty when there is none. */
export function principalHeaders(principal: Principal | undefined): Record<string, string> {
  if (!principal) return {};
  return {
    [PRINCIPAL_HEADER]: JSON.stringify({
      sub: principal.subject,
      roles: principal.roles,
      scopes: principal.scopes,
      ...(principal.issuer ? { iss: principal.issuer } : {}),
    }),
  };
}

/**
 * The principal a received message acts for, read from its `principal` header; `undefined` when
 * the header is absent or not a valid principal.
 */
export function principalFromHeaders(headers: Pick<MessageHeaders, 'extra'>): Principal | undefined {
  const raw = headers.extra?.[PRINCIPAL_HEADER];
  if (!raw) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!value || typeof value !== 'object') return undefined;
  const { sub, roles, scopes, iss } = value as Record<string, unknown>;
  if (typeof sub !== 'string' || !isStrings(roles) || !isStrings(scopes)) return undefined;
  return { subject: sub, roles, scopes, issuer: typeof iss === 'string' ? iss : undefined };
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
