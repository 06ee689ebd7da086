import { defineRoute, runService } from '../index.js';
import { sampleDeclaration } from './sample.service.js';

/** The sample service as a process, for the signal-handling tests: `/slow?ms=` answers after a delay. */
const base = sampleDeclaration();
await runService({
  ...base,
  routes: [
    defineRoute({
      method: 'GET',
      url: '/slow',
      auth: 'public',
      handler: async (request) => {
        const ms = Number((request.query as { ms?: string }).ms ?? 500);
        await new Promise((resolve) => setTimeout(resolve, ms));
        return { slept: ms };
      },
    }),
  ],
});
