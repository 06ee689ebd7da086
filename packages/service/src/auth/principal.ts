/**
 * Who a request acts for, taken from a verified access token. It reaches handlers as
 * `request.principal` and {@link currentPrincipal}, and travels on outgoing messages in the
 * `principal` header (see {@link PRINCIPAL_HEADER}).
 */
export interface Principal {
  /** The token's `sub`: a user or a client id. */
  readonly subject: string;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  /** The token's `iss`. */
  readonly issuer?: string | undefined;
  /** All claims of the token, for checks the runtime does not know. */
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
}

/** Whether the principal has every role in `roles`. */
export function hasRoles(principal: Principal, roles: readonly string[]): boolean {
  return roles.every((role) => principal.roles.includes(role));
}

/** Whether the principal has every scope in `scopes`. */
export function hasScopes(principal: Principal, scopes: readonly string[]): boolean {
  return scopes.every((scope) => principal.scopes.includes(scope));
}
