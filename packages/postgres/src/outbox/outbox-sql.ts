/** The channel on which outbox inserts wake the polling relay. */
export const OUTBOX_NOTIFY_CHANNEL = 'ferry_outbox';
