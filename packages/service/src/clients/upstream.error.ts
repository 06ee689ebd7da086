/** A call to another service failed after the resilience policies gave up: answered with 502. */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError';

  constructor(
    readonly target: string,
    message: string,
    readonly status?: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(`${target}: ${message}`, options);
  }
}
