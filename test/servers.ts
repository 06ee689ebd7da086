import { connect } from 'node:net';

/** Servers a test run may use besides the embedded PostgreSQL. */
export type ServerName = 'postgres' | 'nats' | 'rabbitmq';

/** Environment variable naming each server's URL, and the default tried when it is unset. */
export const SERVER_URLS: Record<ServerName, { env: string; fallback: string }> = {
  postgres: { env: 'FERRY_TEST_POSTGRES_URL', fallback: 'postgres://postgres@127.0.0.1:5432/postgres' },
  nats: { env: 'FERRY_TEST_NATS_URL', fallback: 'nats://127.0.0.1:4222' },
  rabbitmq: { env: 'FERRY_TEST_RABBITMQ_URL', fallback: 'amqp://guest:guest@127.0.0.1:5672' },
};

/** Whether a TCP connection to the URL's host and port opens within `timeoutMs`. */
export function reachable(url: string, timeoutMs = 3000): Promise<boolean> {
  const { hostname, port, protocol } = new URL(url);
  const defaults: Record<string, number> = {
    'postgres:': 5432,
    'postgresql:': 5432,
    'nats:': 4222,
    'amqp:': 5672,
  };
  return new Promise((resolve) => {
    const socket = connect({ host: hostname || '127.0.0.1', port: Number(port) || defaults[protocol] || 0 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The servers FERRY_REQUIRE_SERVERS lists (comma-separated); CI requires all three. */
export function requiredServers(): ServerName[] {
  return (process.env.FERRY_REQUIRE_SERVERS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean) as ServerName[];
}
