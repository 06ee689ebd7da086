import { testBroker } from '@ferry/testing';
import { MemoryBroker } from './memory-broker.js';

const broker = new MemoryBroker({ redeliveryDelayMs: 5 });
// One in-memory broker serves as every "connection": members of a group share its state.
testBroker('memory', { connect: async () => broker, timeoutMs: 5_000 });
