import { defineEvent } from '@ferry/core';
import { z } from 'zod';

/** The poison test's message: `poison` marks the one whose handler kills its process. */
export const Step = defineEvent(
  'Step',
  z.object({ key: z.string(), n: z.number().int(), poison: z.boolean() }),
);
