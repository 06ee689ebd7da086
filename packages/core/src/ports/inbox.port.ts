/** What happened to a message offered to the inbox. */
export type InboxResult = 'handled' | 'duplicate';

/**
 * The idempotent consumer's inbox. `handle` records (group, message id) in a transaction and
 * runs `work` in the same transaction; when the id is already recorded it runs nothing and
 * reports a duplicate. The handler's writes and any messages it sends commit with the record,
 * so the message's effect happens once per group however often it is delivered. `handle`
 * resolves only once that transaction has committed.
 *
 * An implementation may put the work of several messages offered at once into one transaction,
 * run one after another (the PostgreSQL inbox does, decision 0012); the work of a message whose
 * transaction rolled back because of another message may then run again. Work must therefore be
 * safe to run again, as at-least-once delivery requires anyway.
 */
export interface Inbox<Tx> {
  handle(group: string, messageId: string, work: (tx: Tx) => Promise<void>): Promise<InboxResult>;
}
