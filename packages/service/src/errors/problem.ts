/**
 * RFC 9457 problem details. Each kind of failure has a stable `type` URI that clients may
 * branch on; `title` is the same for every instance of the type, `detail` says what happened.
 */
export interface ProblemDetails {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail?: string | undefined;
  readonly instance?: string | undefined;
  readonly [extension: string]: unknown;
}

/** The `type` URI of one of Ferry's own problems: `urn:ferry:problem:<slug>`. */
export const problemType = (slug: string) => `urn:ferry:problem:${slug}`;

/** The problem types the runtime itself answers with. */
export const PROBLEMS = {
  validation: { type: problemType('validation'), title: 'Request is not valid', status: 400 },
  malformedBody: {
    type: problemType('malformed-body'),
    title: 'Request body is not well-formed',
    status: 400,
  },
  unauthorized: { type: problemType('unauthorized'), title: 'Authentication required', status: 401 },
  invalidToken: { type: problemType('invalid-token'), title: 'Access token is not valid', status: 401 },
  forbidden: { type: problemType('forbidden'), title: 'Not allowed', status: 403 },
  notFound: { type: problemType('not-found'), title: 'Not found', status: 404 },
  methodNotAllowed: { type: problemType('method-not-allowed'), title: 'Method not allowed', status: 405 },
  conflict: { type: problemType('conflict'), title: 'Conflict', status: 409 },
  payloadTooLarge: { type: problemType('payload-too-large'), title: 'Request body too large', status: 413 },
  unsupportedMediaType: {
    type: problemType('unsupported-media-type'),
    title: 'Unsupported content type',
    status: 415,
  },
  tooManyRequests: { type: problemType('too-many-requests'), title: 'Too many requests', status: 429 },
  internal: { type: problemType('internal'), title: 'Internal error', status: 500 },
  badGateway: { type: problemType('bad-gateway'), title: 'Upstream call failed', status: 502 },
  unavailable: { type: problemType('unavailable'), title: 'Service unavailable', status: 503 },
  upstreamTimeout: { type: problemType('upstream-timeout'), title: 'Upstream call timed out', status: 504 },
} as const satisfies Record<string, { type: string; title: string; status: number }>;

/** A problem kind: its type URI, title and status. */
export type ProblemKind = { readonly type: string; readonly title: string; readonly status: number };

/**
 * Throw from a handler to answer with a problem+json body; it is an expected outcome, logged at
 * info level and not tracked as an exception.
 * @example
 * throw new ProblemError(PROBLEMS.notFound, `order ${id} does not exist`);
 * throw new ProblemError({ type: 'urn:ftgo:problem:order-minimum', title: 'Order below minimum', status: 422 }, detail);
 */
export class ProblemError extends Error {
  override readonly name = 'ProblemError';

  constructor(
    readonly kind: ProblemKind,
    readonly detail?: string,
    readonly extensions: Readonly<Record<string, unknown>> = {},
  ) {
    super(detail ?? kind.title);
  }

  /** The body this error is answered with. */
  toProblem(instance?: string): ProblemDetails {
    return { ...this.extensions, ...this.kind, detail: this.detail, instance };
  }
}
