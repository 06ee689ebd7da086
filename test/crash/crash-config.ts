import type { Broker } from '@ferry/core';
import { NatsBroker } from '@ferry/nats';
import { PostgresBroker } from '@ferry/postgres';
import { RabbitMqBroker } from '@ferry/rabbitmq';

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

/**
 * Opens the broker the config names, with short leases and redelivery timers so that a killed
 * member's work moves within seconds.
 */
export async function openBroker(config: CrashConfig): Promise<Broker> {
  switch (config.broker) {
    case 'postgres':
      return PostgresBroker.connect({ connectionString: config.brokerUrl, leaseMs: 2000, partitions: 8 });
    case 'nats':
      return NatsBroker.connect({
        servers: config.brokerUrl,
        namespace: config.namespace,
        partitions: 8,
        leaseTtlMs: 2000,
        ackWaitMs: 3000,
        // Kept in the process's output, which the test prints when a group falls short.
        onEvent: (event) =>
          console.log(
            `[nats ${new Date().toISOString()}] ${event.kind}`,
            'error' in event ? `${event.during}: ${String(event.error)}` : JSON.stringify(event),
          ),
      });
    case 'rabbitmq':
      return RabbitMqBroker.connect({ url: config.brokerUrl, namespace: config.namespace, partitions: 8 });
  }
}
