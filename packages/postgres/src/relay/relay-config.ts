import type { Broker } from '@ferry/core';
import type pg from 'pg';
import { PollingRelay, type PollingRelayOptions } from './polling-relay.js';
import type { MessageRelay } from './relay-events.js';
import { TailingRelay, type TailingRelayOptions } from './tailing-relay.js';

/** What every relay is given by the code that wires it, rather than by configuration. */
export interface RelayWiring {
  readonly pool: pg.Pool;
  readonly connectionString: string;
  readonly broker: Broker;
}

/** Settings of the polling relay; `kind` may be left out (the polling relay is the default). */
export type PollingRelaySettings = { readonly kind?: 'polling' } & Omit<
  PollingRelayOptions,
  keyof RelayWiring
>;

/** Settings of the transaction log tailing relay (needs `wal_level = logical`). */
export type TailingRelaySettings = { readonly kind: 'tailing' } & Omit<
  TailingRelayOptions,
  keyof RelayWiring
>;

/** Which relay moves a service's outbox to the broker, and its settings. */
export type RelaySettings = PollingRelaySettings | TailingRelaySettings;

/**
 * Makes the relay the settings select.
 *
 * @example
 * createRelay({ kind: 'tailing', lagWarnBytes: 64 * 1024 * 1024 }, { pool, connectionString, broker });
 */
export function createRelay(settings: RelaySettings, wiring: RelayWiring): MessageRelay {
  if (settings.kind === 'tailing') {
    const { kind: _, ...options } = settings;
    return new TailingRelay({ ...options, ...wiring });
  }
  const { kind: _, ...options } = settings;
  return new PollingRelay({ ...options, ...wiring });
}
