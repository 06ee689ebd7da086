import { NoInstanceError, type ServiceDiscovery, type ServiceInstance } from './service-discovery.js';

/** Client-side load balancing: round robin over the healthy instances of each service. */
export class RoundRobinBalancer {
  readonly #next = new Map<string, number>();

  constructor(private readonly discovery: ServiceDiscovery) {}

  /** The next instance of `service`; throws {@link NoInstanceError} when there is none. */
  async choose(service: string): Promise<ServiceInstance> {
    const instances = await this.discovery.instances(service);
    if (instances.length === 0) throw new NoInstanceError(service);
    const i = this.#next.get(service) ?? 0;
    this.#next.set(service, (i + 1) % 1_000_000);
    return instances[i % instances.length]!;
  }
}
