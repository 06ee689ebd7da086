import { testBroker } from '@ferry/testing';
import { describe, inject, it } from 'vitest';
import { rabbitFixture } from './testing/rabbitmq-fixture.js';

const url = inject('servers').rabbitmq;

if (url) {
  const fixture = rabbitFixture(url, 'contract');
  testBroker('rabbitmq', {
    connect: () => fixture.connect(),
    teardown: () => fixture.teardown(),
  });
} else {
  describe.skip('Broker contract: rabbitmq (no RabbitMQ server reachable)', () => {
    it('needs RabbitMQ', () => {});
  });
}
