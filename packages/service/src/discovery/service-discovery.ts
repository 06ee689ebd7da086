/** One running instance of a service. */
export interface ServiceInstance {
  readonly service: string;
  readonly instanceId: string;
  /** Base URL of its HTTP API. */
  readonly url: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * Finds the instances of a service. `dns` gives one name the platform balances (server-side
 * discovery); `registry` and `static` give the instances themselves, and the client balances
 * over them (client-side discovery).
 */
export interface ServiceDiscovery {
  readonly mode: 'dns' | 'registry' | 'static';
  /** Healthy instances of `service`; empty when none is known. */
  instances(service: string): Promise<readonly ServiceInstance[]>;
}

/** Thrown when a service has no healthy instance. */
export class NoInstanceError extends Error {
  override readonly name = 'NoInstanceError';

  constructor(readonly service: string) {
    super(`no healthy instance of ${service}`);
  }
}

/**
 * Server-side discovery by plain DNS names, as Kubernetes Services give: `{service}` in the
 * template becomes the service name, and the platform balances the connections.
 */
export class DnsDiscovery implements ServiceDiscovery {
  readonly mode = 'dns';

  constructor(private readonly template = 'http://{service}') {}

  async instances(service: string): Promise<readonly ServiceInstance[]> {
    return [
      { service, instanceId: service, url: this.template.replaceAll('{service}', service), metadata: {} },
    ];
  }
}

/** A fixed list: `order=http://a:8080,http://b:8080;kitchen=http://c:8080`. */
export class StaticDiscovery implements ServiceDiscovery {
  readonly mode = 'static';
  readonly #table = new Map<string, ServiceInstance[]>();

  constructor(spec: string | Readonly<Record<string, readonly string[]>>) {
    const table: Record<string, readonly string[]> =
      typeof spec === 'string' ? StaticDiscovery.parse(spec) : spec;
    for (const [service, urls] of Object.entries(table))
      this.#table.set(
        service,
        urls.map((url, i) => ({ service, instanceId: `${service}-${i}`, url, metadata: {} })),
      );
  }

  /** Reads the DISCOVERY_STATIC format; throws naming it when malformed. */
  static parse(spec: string): Record<string, string[]> {
    const table: Record<string, string[]> = {};
    for (const entry of spec
      .split(';')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const [name, urls] = entry.split('=');
      if (!name || !urls) throw new Error(`DISCOVERY_STATIC: expected name=url[,url], got "${entry}"`);
      table[name.trim()] = urls
        .split(',')
        .map((u) => u.trim())
        .filter(Boolean);
    }
    return table;
  }

  async instances(service: string): Promise<readonly ServiceInstance[]> {
    return this.#table.get(service) ?? [];
  }
}
