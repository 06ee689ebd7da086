/** What happened to a message offered to the inbox. */
export type InboxResult = 'handled' | 'duplicate';

/**
 * The idempotent consumer's inbox. `handle` opens a transaction, records (group, message id)
 * in it and runs `work` in the same transaction; when the id is already recorded it runs
 * nothing and reports a duplicate. The handler's writes and any messages it sends commit with
 * the record, so the message's effect happens once per group however often it is delivered.
 */
export interface Inbox<Tx> {
  handle(group: string, messageId: string, work: (tx: Tx) => Promise<void>): Promise<InboxResult>;
}
