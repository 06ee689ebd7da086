import type { WireMessage } from '@ferry/core';
import type pg from 'pg';
import { type LeadingStatement, LeadingThen, thenCommit } from '../leading-then.js';
import { type NamedStatement, pipelinable, submit } from '../pipelined.js';
import type { RelayWakeState } from './relay-wake-state.js';

/**
 * Outbox appends in the transactions Ferry commits itself, written in the COMMIT's round trip.
 *
 * node-postgres sends one statement per round trip, so an eager outbox insert costs a short
 * business transaction a quarter of its throughput. In a transaction Ferry opened
 * (`withTransaction`, the inbox), `append` only queues the messages; they are written by one
 * statement sent just before the next statement on that transaction, whatever it is. When that
 * statement is Ferry's COMMIT, both go in one request (extended protocol, one Sync), so the outbox
 * costs no round trip. Because the insert always runs before the next statement, it sits exactly
 * where an eager insert would: a `ROLLBACK TO SAVEPOINT` after it undoes it, as it must
 * (decision 0009 rejected a version that waited for the COMMIT and so broke this).
 *
 * An insert that fails aborts the transaction, and its error is the one the next statement or the
 * commit throws. The same wrapper sends `withTransaction`'s BEGIN with the work's first statement
 * (see leading-then.ts), so a short business transaction is two requests, outbox or not.
 */

/** The channel on which outbox inserts wake the polling relay. */
export const OUTBOX_NOTIFY_CHANNEL = 'ferry_outbox';

/**
 * The relay's wake-up: a NOTIFY if rows were appended and a relay is waiting for work. The one
 * row it answers says whether a relay was waiting, which {@link RelayWakeState} keeps.
 */
const WAKE_WAITING_RELAY = `
  SELECT waiting, CASE WHEN waiting THEN pg_notify('${OUTBOX_NOTIFY_CHANNEL}', '') END
    FROM (SELECT coalesce(waiting_until > clock_timestamp(), false) AS waiting
            FROM ferry.relay_state
           WHERE id = 1 AND EXISTS (SELECT 1 FROM appended)) AS relay`;

const INSERT_ONE = `INSERT INTO ferry.outbox (message_id, channel, partition_key, headers, body)
    VALUES ($1, $2, $3, $4, $5)`;
const INSERT_MANY = `INSERT INTO ferry.outbox (message_id, channel, partition_key, headers, body)
    SELECT m.id, m.channel, m.key, m.headers, m.body
      FROM json_to_recordset($1::json) AS m(id uuid, channel text, key text, headers text, body text)`;

/** One message: a plain VALUES row, the cheapest insert for the server to plan and run. */
const APPEND_ONE = {
  checked: {
    name: 'ferry_outbox_append_one',
    text: `WITH appended AS (${INSERT_ONE} RETURNING 1)${WAKE_WAITING_RELAY}`,
  },
  unchecked: { name: 'ferry_outbox_append_one_quiet', text: INSERT_ONE },
};

/** Several messages: rows from one JSON array parameter. */
const APPEND_MANY = {
  checked: {
    name: 'ferry_outbox_append_many',
    text: `WITH appended AS (${INSERT_MANY} RETURNING 1)${WAKE_WAITING_RELAY}`,
  },
  unchecked: { name: 'ferry_outbox_append_many_quiet', text: INSERT_MANY },
};

/**
 * The statement that appends `messages` (at least one) to the outbox in one round trip. Checked
 * (the default), it also wakes a waiting relay and answers one row, `waiting`; unchecked, it
 * only inserts (see {@link RelayWakeState} for when that is safe). A busy relay is not notified:
 * NOTIFY serialises commits database-wide, which would cost every business transaction its group
 * commit.
 */
export function appendStatement(messages: readonly WireMessage[], checked = true): NamedStatement {
  if (messages.length === 1) {
    const m = messages[0]!;
    const statement = checked ? APPEND_ONE.checked : APPEND_ONE.unchecked;
    return {
      name: statement.name,
      text: statement.text,
      values: [m.id, m.channel, m.partitionKey, JSON.stringify(m.headers), m.body],
    };
  }
  const rows = messages.map((m) => ({
    id: m.id,
    channel: m.channel,
    key: m.partitionKey,
    headers: m.headers,
    body: m.body,
  }));
  const statement = checked ? APPEND_MANY.checked : APPEND_MANY.unchecked;
  return { name: statement.name, text: statement.text, values: [JSON.stringify(rows)] };
}

/**
 * The append of `messages` in a transaction Ferry opened: unchecked while `wake` says a recent
 * check found no relay waiting; otherwise checked, its answer recorded in `wake`.
 */
function appendFor(messages: readonly WireMessage[], wake: RelayWakeState | undefined): LeadingStatement {
  if (wake?.quiet) return appendStatement(messages, false);
  const statement = appendStatement(messages);
  if (!wake) return statement;
  const sentAt = performance.now();
  return { ...statement, onRow: (fields) => wake.observed(fields[0] === 't', sentAt) };
}

interface Deferral {
  pending: WireMessage[];
  /** The first failed flush: the transaction is aborted and must not report a commit. */
  failure?: unknown;
}

const deferrals = new WeakMap<object, Deferral>();

/**
 * Queues `messages` if `tx` is a transaction that defers its appends; returns false if it is
 * not (the caller then writes them at once).
 */
export function deferAppend(tx: object, messages: readonly WireMessage[]): boolean {
  const deferral = deferrals.get(tx);
  if (!deferral) return false;
  deferral.pending.push(...messages);
  return true;
}

/**
 * The client as the transaction's work sees it. Statements run in order (node-postgres runs a
 * client's queries one after another); the first carries the BEGIN, and each one first flushes
 * the queued appends.
 */
export interface DeferringTransaction {
  readonly tx: pg.PoolClient;
  /** Writes what is queued and commits, in one round trip; throws if anything failed. */
  commit(): Promise<void>;
}

type AnyQuery = (...args: unknown[]) => unknown;

/**
 * Wraps `client` so that outbox appends through it are deferred. With `begun` false, BEGIN is
 * not sent yet: it goes with the first statement. BEGIN and queued appends go in the same request
 * as the statement when it has parameters (see {@link LeadingThen}); otherwise they go first and
 * the statement follows once they have run. A transaction that runs no statement sends nothing.
 */
export function deferringTransaction(
  client: pg.PoolClient,
  options: { begun: boolean; wake?: RelayWakeState | undefined },
): DeferringTransaction {
  const { wake } = options;
  const deferral: Deferral = { pending: [] };
  let begun = options.begun;
  const send = client.query.bind(client) as AnyQuery;

  const BEGIN: LeadingStatement = { text: 'BEGIN' };

  const query = (...args: unknown[]): unknown => {
    // What must run before the caller's statement: BEGIN, the first time; the queued appends.
    const leading: LeadingStatement[] = [];
    if (!begun) {
      begun = true;
      leading.push(BEGIN);
    }
    const appendAt =
      deferral.pending.length > 0 ? leading.push(appendFor(deferral.pending.splice(0), wake)) - 1 : -1;
    if (leading.length === 0) return send(...args);
    const config = pipelinable(args);
    // One request: what leads, then the caller's statement if it can go along (see LeadingThen).
    const request = new LeadingThen(leading, config);
    const sent = submit(client, request).catch((error: unknown) => {
      // A failing append aborts the transaction: the commit must fail with its error too.
      if (request.failedLeading === appendAt) deferral.failure ??= error;
      throw error;
    });
    if (config) return sent;
    const first = args[0] as { submit?: unknown } | undefined;
    if (typeof first?.submit === 'function') {
      // A submittable (a cursor) is handed back at once, so it queues behind what leads.
      void sent.catch(() => {});
      return send(...args);
    }
    // Anything else waits for what leads (a round trip), rather than queueing on a busy client.
    const callback = args.at(-1);
    if (typeof callback === 'function') {
      sent.then(
        () => send(...args),
        (error: unknown) => callback(error),
      );
      return undefined;
    }
    return sent.then(() => send(...args));
  };

  const tx = new Proxy(client, {
    get(target, property) {
      if (property === 'query') return query;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  deferrals.set(tx, deferral);

  return {
    tx,
    async commit() {
      if (deferral.failure !== undefined) throw deferral.failure;
      const messages = deferral.pending.splice(0);
      if (!begun) {
        // No statement ran: the appends alone are one statement, atomic without BEGIN; sent the
        // way the leading appends are, so its wake-up answer reaches `wake` the same way.
        if (messages.length > 0) await submit(client, new LeadingThen([appendFor(messages, wake)]));
        return;
      }
      const result =
        messages.length === 0
          ? await client.query('COMMIT')
          : await submit(client, thenCommit(appendFor(messages, wake)));
      // COMMIT of a transaction an earlier statement aborted succeeds as a ROLLBACK.
      if (result.command === 'ROLLBACK') {
        throw new Error('the transaction was rolled back: a statement in it failed and the error was caught');
      }
    },
  };
}
