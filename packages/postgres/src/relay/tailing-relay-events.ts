import type { RelayEvent, RelayLag } from './relay-events.js';

/** What the tailing relay reports besides the events every relay reports. */
export type TailingRelayEvent =
  | RelayEvent
  /** This instance holds the slot and streams from it. */
  | { readonly kind: 'active'; readonly relay: string; readonly slot: string }
  /** Another instance holds the slot; this one waits to take over. */
  | { readonly kind: 'standby'; readonly relay: string; readonly slot: string }
  /** The slot was created; `backlog` rows committed before it were published first. */
  | { readonly kind: 'slot-created'; readonly relay: string; readonly slot: string; readonly backlog: number }
  /** A session of a tailer whose lock was lost still streamed; it was ended so this one can take over. */
  | {
      readonly kind: 'takeover';
      readonly relay: string;
      readonly slot: string;
      readonly terminatedPid: number;
    }
  /** Streaming stopped on an error (connection lost, slot refused, bad data); it is retried. */
  | {
      readonly kind: 'stream-failed';
      readonly relay: string;
      readonly slot: string;
      readonly error: unknown;
      readonly retryInMs: number;
    }
  /** Periodic measure of the slot's lag, for a metric. */
  | {
      readonly kind: 'slot-lag';
      readonly relay: string;
      readonly slot: string;
      readonly bytes: number;
      readonly messages: number;
    }
  /** The slot holds back more WAL than the threshold: the relay or the broker is falling behind. */
  | {
      readonly kind: 'slot-lag-warning';
      readonly relay: string;
      readonly slot: string;
      readonly bytes: number;
      readonly thresholdBytes: number;
    };

/** The tailing relay's lag: messages it holds, and WAL bytes its slot holds back. */
export interface TailingRelayLag extends RelayLag {
  /**
   * `pg_current_wal_lsn() - confirmed_flush_lsn` of the slot: WAL the server keeps for the
   * relay. Unlike `messages` (what this instance received and the broker has not yet
   * acknowledged), it is the same whichever instance asks, active or standing by.
   */
  readonly bytes: number;
}
