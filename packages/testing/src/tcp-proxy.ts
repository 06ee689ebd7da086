import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/**
 * A TCP proxy for tests that cut a client off from a shared server (RabbitMQ, PostgreSQL) without touching it:
 * `sever()` drops every connection through it, `refuse()` also turns new ones away until
 * `accept()`. Both sides see the connection end, as when a network link or a process dies.
 */
export class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #refusing = false;
  /** Connections cut by `sever` or `refuse`. */
  severed = 0;

  private constructor(
    server: Server,
    readonly port: number,
  ) {
    this.#server = server;
  }

  /** Starts a proxy on a free local port that forwards to `target` (`host:port`). */
  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    let proxy!: TcpProxy;
    const server = createServer((client) => proxy.#accept(client, targetHost, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    proxy = new TcpProxy(server, address.port);
    return proxy;
  }

  /** `url` with its host and port replaced by the proxy's. */
  route(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString();
  }

  /** Connections open through the proxy. */
  get open(): number {
    return this.#pairs.size;
  }

  /** Destroys every connection through the proxy. */
  sever(): void {
    for (const [client, upstream] of this.#pairs) {
      client.destroy();
      upstream.destroy();
      this.severed++;
    }
    this.#pairs.clear();
  }

  /** Severs every connection and turns new ones away until {@link accept}. */
  refuse(): void {
    this.#refusing = true;
    this.sever();
  }

  /** Lets connections through again. */
  accept(): void {
    this.#refusing = false;
  }

  async close(): Promise<void> {
    this.sever();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket, host: string, port: number): void {
    if (this.#refusing) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect({ host, port });
    const pair: [Socket, Socket] = [client, upstream];
    this.#pairs.add(pair);
    const drop = () => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
