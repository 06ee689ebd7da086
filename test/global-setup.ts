import type { TestProject } from 'vitest/node';
import { reachable, requiredServers, SERVER_URLS, type ServerName } from './servers.js';
import { startTestPostgres } from './test-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URLs of the servers this run may use; a missing one means its suites skip. */
    servers: Partial<Record<ServerName, string>>;
    /** Admin URL of the embedded PostgreSQL server started for this run. */
    embeddedPostgresUrl: string;
  }
}

/**
 * Once per run: start (or reuse) the embedded PostgreSQL server and find which optional servers
 * are reachable. A server named in FERRY_REQUIRE_SERVERS that cannot be reached fails the run;
 * any other missing server makes its suites skip, and the run says so.
 */
export default async function setup(project: TestProject) {
  const required = requiredServers();
  const servers: Partial<Record<ServerName, string>> = {};
  const skipped: string[] = [];
  for (const [name, { env, fallback }] of Object.entries(SERVER_URLS) as Array<
    [ServerName, { env: string; fallback: string }]
  >) {
    const url = process.env[env] ?? fallback;
    if (await reachable(url)) servers[name] = url;
    else if (required.includes(name))
      throw new Error(`${name} is required (FERRY_REQUIRE_SERVERS) but ${url} is not reachable; set ${env}`);
    else skipped.push(`${name} (nothing at ${url}; set ${env})`);
  }
  if (skipped.length > 0) {
    console.log(`[ferry] ${project.name}: skipping server-backed suites for ${skipped.join(', ')}`);
  }
  project.provide('servers', servers);
  const embedded = await startTestPostgres();
  project.provide('embeddedPostgresUrl', embedded.url);
  return async () => {
    await embedded.stop();
  };
}
