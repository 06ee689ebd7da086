import { BrokenCircuitError, TaskCancelledError } from 'cockatiel';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { UpstreamError } from '../clients/upstream.error.js';
import { NoInstanceError } from '../discovery/service-discovery.js';
import { PROBLEMS, ProblemError, problemType } from '../errors/problem.js';
import { expectedProblem } from './error-handler.js';

describe('problem details for expected failures', () => {
  it('keeps a thrown ProblemError as it is, with its extensions', () => {
    const problem = expectedProblem(
      new ProblemError(PROBLEMS.conflict, 'order is CANCEL_PENDING', { state: 'CANCEL_PENDING' }),
    );
    expect(problem).toMatchObject({
      type: problemType('conflict'),
      status: 409,
      detail: 'order is CANCEL_PENDING',
      state: 'CANCEL_PENDING',
    });
  });

  it('lists each invalid field of a zod validation failure', () => {
    const error = Object.assign(z.object({ a: z.string(), b: z.number() }).safeParse({ b: 'x' }).error!, {
      code: 'FST_ERR_VALIDATION',
      validationContext: 'querystring',
    });
    const problem = expectedProblem(error);
    expect(problem?.status).toBe(400);
    expect(problem?.errors).toEqual([
      { in: 'querystring', path: 'a', message: expect.any(String) },
      { in: 'querystring', path: 'b', message: expect.any(String) },
    ]);
  });

  it('turns dependency failures into 502, 503 and 504', () => {
    expect(expectedProblem(new UpstreamError('kitchen', 'answered 500', 500))?.status).toBe(502);
    expect(expectedProblem(new BrokenCircuitError())?.status).toBe(503);
    expect(expectedProblem(new NoInstanceError('kitchen'))?.status).toBe(503);
    expect(expectedProblem(new TaskCancelledError())?.status).toBe(504);
  });

  it('leaves an unexpected error to exception tracking', () => {
    expect(expectedProblem(new Error('bug'))).toBeUndefined();
    expect(expectedProblem(Object.assign(new Error('bad gateway'), { statusCode: 502 }))).toBeUndefined();
  });
});
