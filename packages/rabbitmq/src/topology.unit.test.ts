import { describe, expect, it } from 'vitest';
import { isPluginMissing, RabbitMqPluginMissingError } from './topology.js';

describe('plugin check', () => {
  it('recognises RabbitMQ’s unknown exchange type error and names the plugin', () => {
    const amqpError = new Error(
      `Connection closed: 503 (COMMAND-INVALID) with message "COMMAND_INVALID - unknown exchange type 'x-consistent-hash'"`,
    );
    expect(isPluginMissing(amqpError)).toBe(true);
    expect(isPluginMissing(new Error('PRECONDITION_FAILED'))).toBe(false);
    expect(new RabbitMqPluginMissingError(amqpError).message).toContain(
      'rabbitmq-plugins enable rabbitmq_consistent_hash_exchange',
    );
  });
});
