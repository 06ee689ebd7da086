import { ensureDatabase } from '../database.js';
import { databaseUrl, startEmbeddedPostgres } from '../embedded/embedded-server.js';

/** Where a process's databases live. */
export interface DatabaseServer {
  /** Admin URL of the server. */
  readonly adminUrl: string;
  /** True when this is the embedded server. */
  readonly embedded: boolean;
  /** Creates database `name` if needed and returns its URL. */
  database(name: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The PostgreSQL server to use: the one `adminUrl` names (from configuration, e.g.
 * FERRY_DATABASE_URL), else the embedded server under `.ferry/`. One database per service,
 * created on demand.
 */
export async function openDatabaseServer(
  options: { adminUrl?: string | undefined; dataDir?: string } = {},
): Promise<DatabaseServer> {
  const embedded = options.adminUrl ? undefined : await startEmbeddedPostgres({ dataDir: options.dataDir });
  const adminUrl = options.adminUrl ?? embedded!.url;
  return {
    adminUrl,
    embedded: embedded !== undefined,
    async database(name) {
      await ensureDatabase(adminUrl, name);
      return databaseUrl(adminUrl, name);
    },
    stop: async () => embedded?.stop(),
  };
}
