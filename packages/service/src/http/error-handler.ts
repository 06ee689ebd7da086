import { trace } from '@opentelemetry/api';
import { BrokenCircuitError, BulkheadRejectedError, TaskCancelledError } from 'cockatiel';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { UpstreamError } from '../clients/upstream.error.js';
import { NoInstanceError } from '../discovery/service-discovery.js';
import { PROBLEMS, type ProblemDetails, ProblemError, problemType } from '../errors/problem.js';
import { fingerprint } from '../exceptions/exception.fingerprint.js';
import type { ExceptionTracker } from '../exceptions/exception.tracker.js';
import { routeInfo } from './route-info.js';

const PROBLEM_JSON = 'application/problem+json; charset=utf-8';

/** One invalid field in a `validation` problem. */
export interface FieldIssue {
  /** `body`, `params`, `querystring` or `headers`. */
  readonly in: string;
  /** Dotted path in that part; empty for the part itself. */
  readonly path: string;
  readonly message: string;
}

/** Turns an expected failure into problem details; `undefined` for an unexpected error. */
export function expectedProblem(error: FastifyError | Error): ProblemDetails | undefined {
  if (error instanceof ProblemError) return error.toProblem();
  const fe = error as FastifyError & { validationContext?: string };
  if (fe.code === 'FST_ERR_VALIDATION') {
    const where = fe.validationContext ?? 'body';
    const errors: FieldIssue[] =
      error instanceof z.ZodError
        ? error.issues.map((issue) => ({ in: where, path: issue.path.join('.'), message: issue.message }))
        : [{ in: where, path: '', message: error.message }];
    return { ...PROBLEMS.validation, detail: `${where} is not valid: ${summarise(errors)}`, errors };
  }
  switch (fe.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { ...PROBLEMS.unsupportedMediaType, detail: 'send application/json' };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { ...PROBLEMS.payloadTooLarge, detail: 'the request body is over the limit' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { ...PROBLEMS.malformedBody, detail: error.message };
  }
  if (error instanceof SyntaxError && fe.statusCode === 400)
    return { ...PROBLEMS.malformedBody, detail: `body is not valid JSON: ${error.message}` };
  if (
    error instanceof BrokenCircuitError ||
    error instanceof BulkheadRejectedError ||
    error instanceof NoInstanceError
  )
    return { ...PROBLEMS.unavailable, detail: 'a service this one depends on is unavailable' };
  if (error instanceof TaskCancelledError)
    return { ...PROBLEMS.upstreamTimeout, detail: 'an upstream call timed out' };
  if (error instanceof UpstreamError) return { ...PROBLEMS.badGateway, detail: error.message };
  const status = fe.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    if (status === 404) return { ...PROBLEMS.notFound, detail: error.message };
    return { type: problemType(`http-${status}`), title: error.message, status };
  }
  return undefined;
}

function summarise(errors: readonly FieldIssue[]): string {
  return errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ');
}

/**
 * Answers every error with `application/problem+json`. Expected failures (bad input, tokens,
 * problems thrown on purpose, unavailable dependencies) are answered with their type and never
 * logged as errors; anything else is a 500 that exception tracking records, answered with the
 * fingerprint and trace id but no internals.
 */
export function installErrorHandling(
  app: FastifyInstance,
  logger: Logger,
  tracker: ExceptionTracker | undefined,
): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const expected = expectedProblem(error);
    if (expected) {
      if (expected.status >= 500)
        logger.warn({ problem: expected.type, detail: expected.detail }, 'dependency failure');
      return reply
        .code(expected.status)
        .type(PROBLEM_JSON)
        .send({ ...expected, instance: request.url });
    }
    const print = fingerprint(error);
    const where = { method: request.method, route: routeInfo(request).url };
    if (tracker) void tracker.capture(error, where);
    else logger.error({ err: error, fingerprint: print, ...where }, `unexpected error: ${error.message}`);
    return reply
      .code(500)
      .type(PROBLEM_JSON)
      .send({
        ...PROBLEMS.internal,
        detail: 'an unexpected error occurred; it has been recorded',
        instance: request.url,
        fingerprint: print,
        traceId: trace.getActiveSpan()?.spanContext().traceId,
      });
  });
  app.setNotFoundHandler((request, reply) => {
    reply
      .code(404)
      .type(PROBLEM_JSON)
      .send({
        ...PROBLEMS.notFound,
        detail: `no route ${request.method} ${request.url.split('?')[0]}`,
        instance: request.url,
      });
  });
}

/** Fastify's `frameworkErrors` option: errors before routing (a bad URL) become problems too. */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const status = error.statusCode && error.statusCode < 500 ? error.statusCode : 400;
  reply
    .code(status)
    .type(PROBLEM_JSON)
    .send({ type: problemType(`http-${status}`), title: error.message, status, instance: request.url });
}
