import { testBroker } from '@ferry/testing';
import { describe } from 'vitest';
import { postgresTargets, useTestDatabase } from '../../../../test/pg-test-database.js';
import { PostgresBroker } from './postgres-broker.js';

for (const target of postgresTargets()) {
  describe(`PostgreSQL broker on the ${target.name} server`, () => {
    const db = useTestDatabase(() => target.adminUrl, 'broker');
    testBroker('postgres', {
      connect: () => PostgresBroker.connect({ connectionString: db().url, leaseMs: 2000, partitions: 8 }),
    });
  });
}
