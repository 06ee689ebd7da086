import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';

interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/** Options of {@link TestIssuer.token}. */
export interface TokenOptions {
  readonly subject?: string;
  readonly roles?: readonly string[];
  readonly scopes?: readonly string[];
  readonly audience?: string;
  readonly issuer?: string;
  /** Seconds from now; negative for an expired token (default 300). */
  readonly expiresIn?: number;
  readonly claims?: JWTPayload;
  /** Sign with this key id instead of the current key. */
  readonly kid?: string;
}

/**
 * A token issuer for tests: real key pairs, a real JWKS endpoint over HTTP on 127.0.0.1, signed
 * JWTs, and key rotation. `jwksRequests` counts fetches, so tests can see caching work.
 */
export class TestIssuer {
  readonly #keys: SigningKey[] = [];
  #published: SigningKey[] = [];
  #server: Server | undefined;
  jwksRequests = 0;

  private constructor(
    readonly issuer: string,
    readonly audience: string,
    private readonly alg: string,
  ) {}

  /** Starts the JWKS endpoint with one key. */
  static async start(
    options: { issuer?: string; audience?: string; alg?: 'RS256' | 'ES256' } = {},
  ): Promise<TestIssuer> {
    const issuer = new TestIssuer(
      options.issuer ?? 'https://auth.ferry.test',
      options.audience ?? 'ferry-test',
      options.alg ?? 'ES256',
    );
    await issuer.rotate();
    issuer.#server = createServer((request, response) => {
      if (request.url !== '/.well-known/jwks.json') {
        response.writeHead(404).end();
        return;
      }
      issuer.jwksRequests++;
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ keys: issuer.#published.map((k) => k.publicJwk) }));
    });
    await new Promise<void>((resolve) => issuer.#server!.listen(0, '127.0.0.1', resolve));
    return issuer;
  }

  /** The JWKS URL. */
  get jwksUrl(): string {
    const { port } = this.#server!.address() as AddressInfo;
    return `http://127.0.0.1:${port}/.well-known/jwks.json`;
  }

  /** The key id tokens are signed with now. */
  get currentKid(): string {
    return this.#keys.at(-1)!.kid;
  }

  /** Adds a new key, signs with it from now on, and publishes it; `retireOld` unpublishes the others. */
  async rotate(retireOld = false): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair(this.alg, { extractable: true });
    const kid = randomUUID();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: this.alg, use: 'sig' };
    const key = { kid, alg: this.alg, privateKey, publicJwk };
    this.#keys.push(key);
    this.#published = retireOld ? [key] : [...this.#published, key];
    return kid;
  }

  /** A signed access token. */
  async token(options: TokenOptions = {}): Promise<string> {
    const key = options.kid ? this.#keys.find((k) => k.kid === options.kid)! : this.#keys.at(-1)!;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      roles: options.roles ?? [],
      scope: (options.scopes ?? []).join(' '),
      ...options.claims,
    })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setSubject(options.subject ?? 'user-1')
      .setIssuer(options.issuer ?? this.issuer)
      .setAudience(options.audience ?? this.audience)
      .setIssuedAt(now)
      .setExpirationTime(now + (options.expiresIn ?? 300))
      .sign(key.privateKey);
  }

  /** Settings that point a service at this issuer. */
  settings(): Record<string, string> {
    return {
      AUTH_MODE: 'jwt',
      AUTH_JWKS_URL: this.jwksUrl,
      AUTH_ISSUER: this.issuer,
      AUTH_AUDIENCE: this.audience,
    };
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }
}
