import { ConfigError } from './config.error.js';
import { type RawSettings, toRaw } from './config.loader.js';

/**
 * A configuration service reached over HTTP (in the manner of Spring Cloud Config): `GET url`
 * returns a flat JSON object of settings. It is asked with `If-None-Match`, so an unchanged set
 * costs a 304.
 */
export class ConfigServiceSource {
  #etag: string | undefined;

  constructor(
    readonly url: string,
    private readonly timeoutMs = 5_000,
  ) {}

  /** The settings, or `undefined` when they have not changed since the last call. */
  async fetch(): Promise<RawSettings | undefined> {
    let response: Response;
    try {
      response = await fetch(this.url, {
        headers: { accept: 'application/json', ...(this.#etag ? { 'if-none-match': this.#etag } : {}) },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new ConfigError([
        { variable: 'CONFIG_URL', message: `unreachable: ${(error as Error).message}` },
      ]);
    }
    if (response.status === 304) return undefined;
    if (!response.ok)
      throw new ConfigError([{ variable: 'CONFIG_URL', message: `answered ${response.status}` }]);
    const body = (await response.json().catch(() => undefined)) as unknown;
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw new ConfigError([
        { variable: 'CONFIG_URL', message: 'did not return a JSON object of settings' },
      ]);
    this.#etag = response.headers.get('etag') ?? undefined;
    return toRaw(body as Record<string, unknown>);
  }
}
