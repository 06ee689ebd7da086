import { testBroker } from '@ferry/testing';
import { describe, inject } from 'vitest';
import { NatsBroker } from './nats.broker.js';
import { dropNamespace, uniqueNamespace } from './nats.fixtures.js';

const url = inject('servers').nats;
const namespace = uniqueNamespace('contract');

describe.skipIf(!url)('NatsBroker', () => {
  testBroker('nats', {
    // Short leases so that partitions move within the suite's timeouts.
    connect: () => NatsBroker.connect({ servers: url!, namespace, leaseTtlMs: 3000, ackWaitMs: 5000 }),
    teardown: () => dropNamespace(url!, namespace),
  });
});
