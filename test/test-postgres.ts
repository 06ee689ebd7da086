import { startEmbeddedPostgres } from '@ferry/postgres';

/** Starts (or reuses) the embedded PostgreSQL server test runs share, under `.ferry/test-postgres`. */
export async function startTestPostgres() {
  return startEmbeddedPostgres({ dataDir: '.ferry/test-postgres' });
}
