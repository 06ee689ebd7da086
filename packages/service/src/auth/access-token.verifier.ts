import { createRemoteJWKSet, errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import type { Principal } from './principal.js';

/** Why a token was refused; stable, for logs and the problem detail. */
export type TokenFailure =
  | 'malformed'
  | 'algorithm'
  | 'signature'
  | 'unknown-key'
  | 'expired'
  | 'not-yet-valid'
  | 'issuer'
  | 'audience'
  | 'claims';

/** A token that is not acceptable: answered with 401. */
export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';

  constructor(
    readonly reason: TokenFailure,
    message: string,
  ) {
    super(message);
  }
}

/** The key set could not be fetched: tokens cannot be checked now, answered with 503. */
export class KeySetUnavailableError extends Error {
  override readonly name = 'KeySetUnavailableError';
}

/** Options of {@link AccessTokenVerifier}. */
export interface AccessTokenOptions {
  /** JWKS endpoint; keys are cached and fetched again when a token names an unknown `kid`. */
  readonly jwksUrl?: string | undefined;
  /** Or a key lookup of your own (a local JWKS, tests). */
  readonly keys?: JWTVerifyGetKey | undefined;
  readonly issuer?: string | undefined;
  readonly audience?: string | readonly string[] | undefined;
  /** Leeway on `exp`, `nbf` and `iat`, in seconds (default 30). */
  readonly clockSkewSeconds?: number | undefined;
  /** Accepted algorithms; asymmetric only (default RS256, ES256, PS256, EdDSA). */
  readonly algorithms?: readonly string[] | undefined;
  /** Dotted path of the claim holding the roles array (default `roles`). */
  readonly rolesClaim?: string | undefined;
  /** How long fetched keys are trusted without refetching (default 10 minutes). */
  readonly jwksCacheMaxAgeMs?: number | undefined;
  /** Least time between two fetches caused by unknown keys (default 30 s). */
  readonly jwksCooldownMs?: number | undefined;
  /** Verified tokens remembered, so a client's repeated calls are checked once (default 10 000; 0 turns it off). */
  readonly cacheSize?: number | undefined;
  /** Longest a verified token is remembered, whatever its expiry (default 60 s). */
  readonly cacheTtlMs?: number | undefined;
}

interface CachedPrincipal {
  readonly token: string;
  readonly principal: Principal;
  /** Until when it may be answered from the cache, in ms since the epoch: the token's expiry (skew included) or the cache's time to live, whichever is first. */
  readonly goodUntil: number;
}

/**
 * The cache key of a token: the end of its signature. Hashing a whole token (hundreds of
 * characters, a new string on every request) is what a lookup would otherwise cost; the entry
 * keeps the full token, compared before the entry is used.
 */
function cacheKey(token: string): string {
  return token.length > 32 ? token.slice(-32) : token;
}

/** The signature algorithms an access token may use: asymmetric only. */
export const ASYMMETRIC_ALGORITHM = /^(RS|PS|ES)(256|384|512)$|^EdDSA$|^Ed25519$|^ES256K$/;

/**
 * Verifies JWT access tokens: signature through the issuer's JWKS (cached; an unknown `kid`
 * triggers a refetch, which is how key rotation reaches us), issuer, audience, expiry with a small
 * clock skew. Only asymmetric algorithms are accepted, so `alg: none`, unsigned tokens and
 * HS256-with-the-public-key (algorithm confusion) are refused.
 */
export class AccessTokenVerifier {
  readonly #keys: JWTVerifyGetKey;
  readonly #algorithms: string[];
  readonly #rolesPath: string[];
  readonly #cache = new Map<string, CachedPrincipal>();

  constructor(private readonly options: AccessTokenOptions) {
    const algorithms = [...(options.algorithms ?? ['RS256', 'ES256', 'PS256', 'EdDSA'])];
    const weak = algorithms.filter((alg) => !ASYMMETRIC_ALGORITHM.test(alg));
    if (weak.length > 0)
      throw new Error(`AUTH_ALGORITHMS: only asymmetric algorithms are allowed, not ${weak.join(', ')}`);
    this.#algorithms = algorithms;
    this.#rolesPath = (options.rolesClaim ?? 'roles').split('.');
    if (options.keys) this.#keys = options.keys;
    else if (options.jwksUrl)
      this.#keys = createRemoteJWKSet(new URL(options.jwksUrl), {
        cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000,
        cooldownDuration: options.jwksCooldownMs ?? 30_000,
        timeoutDuration: 5_000,
      });
    else throw new Error('AUTH_JWKS_URL: an access-token verifier needs a JWKS URL or keys');
  }

  /**
   * The principal a valid token stands for; throws {@link InvalidTokenError} or
   * {@link KeySetUnavailableError}. A token verified before is answered from a bounded cache
   * until it expires or `cacheTtlMs` passes, whichever is first.
   */
  async verify(token: string): Promise<Principal> {
    const remembered = this.remembered(token);
    if (remembered) return remembered;
    const now = Date.now();
    const principal = await this.verifyUncached(token);
    const size = this.options.cacheSize ?? 10_000;
    if (size > 0) {
      const expiresAt =
        Number(principal.claims?.exp ?? 0) * 1000 + (this.options.clockSkewSeconds ?? 30) * 1000;
      this.#cache.set(cacheKey(token), {
        token,
        principal,
        goodUntil: Math.min(expiresAt, now + (this.options.cacheTtlMs ?? 60_000)),
      });
      // Full: the oldest entry goes (a token still in use is verified again and re-enters).
      if (this.#cache.size > size) this.#cache.delete(this.#cache.keys().next().value!);
    }
    return principal;
  }

  /**
   * The principal of a token verified before, still within its expiry and the cache's time to
   * live; `undefined` otherwise. Synchronous, so the common case costs no promise.
   */
  remembered(token: string): Principal | undefined {
    const key = cacheKey(token);
    const cached = this.#cache.get(key);
    if (cached === undefined || cached.token !== token) return undefined;
    if (Date.now() < cached.goodUntil) return cached.principal;
    this.#cache.delete(key);
    return undefined;
  }

  /** Verifies the token's signature and claims now, without the cache. */
  async verifyUncached(token: string): Promise<Principal> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        algorithms: this.#algorithms,
        issuer: this.options.issuer,
        audience: this.options.audience as string | string[] | undefined,
        clockTolerance: this.options.clockSkewSeconds ?? 30,
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (error) {
      throw classify(error);
    }
    return {
      subject: payload.sub!,
      roles: strings(this.#claim(payload, this.#rolesPath)),
      scopes: scopesOf(payload),
      issuer: payload.iss,
      claims: payload,
    };
  }

  #claim(payload: JWTPayload, path: readonly string[]): unknown {
    let value: unknown = payload;
    for (const key of path)
      value = value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    return value;
  }
}

function scopesOf(payload: JWTPayload): string[] {
  if (typeof payload.scope === 'string') return payload.scope.split(' ').filter(Boolean);
  return strings(payload.scp);
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function classify(error: unknown): Error {
  if (error instanceof errors.JWTExpired) return new InvalidTokenError('expired', 'token has expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    const claim = error.claim;
    if (claim === 'iss') return new InvalidTokenError('issuer', 'token has the wrong issuer');
    if (claim === 'aud') return new InvalidTokenError('audience', 'token is not meant for this service');
    if (claim === 'nbf') return new InvalidTokenError('not-yet-valid', 'token is not valid yet');
    return new InvalidTokenError('claims', `token claim ${claim} is not valid: ${error.reason}`);
  }
  if (error instanceof errors.JOSEAlgNotAllowed)
    return new InvalidTokenError('algorithm', 'token algorithm is not accepted');
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return new InvalidTokenError('signature', 'token signature is not valid');
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)
    return new InvalidTokenError('unknown-key', 'token is signed with an unknown key');
  if (
    error instanceof errors.JWSInvalid ||
    error instanceof errors.JWTInvalid ||
    error instanceof errors.JOSENotSupported
  )
    return new InvalidTokenError('malformed', `token is malformed: ${(error as Error).message}`);
  if (error instanceof errors.JWKSTimeout) return new KeySetUnavailableError('JWKS endpoint timed out');
  if (error instanceof errors.JWKSInvalid)
    return new KeySetUnavailableError('JWKS endpoint returned an invalid key set');
  return new KeySetUnavailableError(`JWKS endpoint failed: ${(error as Error).message}`);
}
