import type pg from 'pg';

/*
 * Requests that carry more than one statement. node-postgres sends one statement per round trip
 * and does not pipeline, but it runs *submittables*: objects that write protocol messages
 * themselves and receive the answers (pg-cursor is one). `LeadingThen` (leading-then.ts)
 * writes several statements in the extended protocol with a single Sync, so the server answers them
 * in one go; if one fails, the server skips the rest up to the Sync. This file holds the types
 * it drives and the helpers around it. See decision 0010.
 */

/** Runs `query` on `client` after the queries queued before it; resolves to its outcome. */
export function submit<T>(client: pg.ClientBase, query: { readonly done: Promise<T> }): Promise<T> {
  client.query(query as unknown as pg.Submittable);
  return query.done;
}

/** The parts of node-postgres' connection a submittable drives (pg/lib/connection.js). */
export interface Connection {
  readonly parsedStatements: Record<string, string>;
  readonly submittedNamedStatements: Record<string, string>;
  readonly stream: { cork?(): void; uncork?(): void };
  parse(query: { name: string; text: string; types: unknown[] }): void;
  bind(config: { statement: string; values: readonly string[] }): void;
  execute(config: Record<string, never>): void;
  close(config: { type: 'S' | 'P'; name: string }): void;
  sync(): void;
  sendCopyFail(message: string): void;
}

/** A named statement with text parameters. */
export interface NamedStatement {
  readonly name: string;
  readonly text: string;
  readonly values: string[];
}

/** The node-postgres query internals a submittable forwards the answers to (pg/lib/query.js). */
export interface QueryInternals {
  readonly name?: string;
  readonly text: string;
  submit(connection: Connection): Error | null;
  handleRowDescription(message: unknown): void;
  handleDataRow(message: unknown): void;
  handleCommandComplete(message: unknown, connection: Connection): void;
  handleEmptyQuery(connection: Connection): void;
  handlePortalSuspended(connection: Connection): void;
  handleError(error: unknown, connection: Connection): void;
  handleReadyForQuery(connection: Connection): void;
  handleCopyInResponse(connection: Connection): void;
  handleCopyData(message: unknown, connection: Connection): void;
}

/**
 * The query config of a caller's statement that can follow BEGIN in one request: unnamed, with
 * parameters (so node-postgres would send it in the extended protocol anyway), no callback, no
 * row paging. Anything else gets a BEGIN of its own.
 */
export function pipelinable(args: readonly unknown[]): pg.QueryConfig | undefined {
  const [first, second, third] = args;
  if (third !== undefined) return undefined;
  if (typeof first === 'string') {
    return Array.isArray(second) && second.length > 0 ? { text: first, values: second } : undefined;
  }
  if (second !== undefined || typeof first !== 'object' || first === null || 'submit' in first)
    return undefined;
  const config = first as pg.QueryConfig & { rows?: unknown; callback?: unknown };
  if (typeof config.text !== 'string' || config.name || config.rows !== undefined || config.callback)
    return undefined;
  return Array.isArray(config.values) && config.values.length > 0 ? config : undefined;
}
