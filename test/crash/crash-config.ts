import type { Broker } from '@ferry/core';
import { PostgresBroker } from '@ferry/postgres';

/** What a crash-test process needs; passed as JSON in FERRY_CRASH_CONFIG. */
export interface CrashConfig {
  readonly broker: 'postgres' | 'nats' | 'rabbitmq';
  /** Broker database URL (postgres), or server URL (nats, rabbitmq). */
  readonly brokerUrl: string;
  /** Prefix for broker-side names so that runs do not meet. */
  readonly namespace: string;
  readonly relay: 'polling' | 'tailing';
  readonly producerDbUrl: string;
  readonly consumerDbUrl: string;
  readonly channel: string;
}

export function readConfig(): CrashConfig {
  const raw = process.env.FERRY_CRASH_CONFIG;
  if (!raw) throw new Error('FERRY_CRASH_CONFIG is not set');
  return JSON.parse(raw) as CrashConfig;
}

/** Opens the broker the config names. */
export async function openBroker(config: CrashConfig): Promise<Broker> {
  switch (config.broker) {
    case 'postgres':
      return PostgresBroker.connect({ connectionString: config.brokerUrl, leaseMs: 2000, partitions: 8 });
    default:
      throw new Error(`crash test broker ${config.broker} is not wired yet`);
  }
}
