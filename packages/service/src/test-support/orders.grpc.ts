import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** The test Order gRPC service, loaded from `orders.proto`. */
export function loadOrderService(): grpc.ServiceClientConstructor {
  const definition = loadSync(fileURLToPath(new URL('./orders.proto', import.meta.url)), {
    keepCase: false,
    defaults: true,
  });
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    ftgo: { order: { OrderService: grpc.ServiceClientConstructor } };
  };
  return root.ftgo.order.OrderService;
}
