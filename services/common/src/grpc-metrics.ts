import type { Registry } from "prom-client";
import { Counter, Histogram } from "prom-client";
import type { CallObserver } from "./grpc-adapter.js";
import { grpcCodeName } from "./grpc-codes.js";

/**
 * The grpc-ecosystem server metrics (go-grpc-prometheus names): `grpc_server_handled_total` and
 * `grpc_server_handling_seconds`, labelled by service, method and code, with `grpc_type`.
 */
export function createGrpcServerMetrics(registry: Registry): CallObserver {
  const handled = new Counter({
    name: "grpc_server_handled_total",
    help: "Total number of RPCs completed on the server, regardless of success or failure.",
    labelNames: ["grpc_type", "grpc_service", "grpc_method", "grpc_code"] as const,
    registers: [registry],
  });
  const seconds = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    labelNames: ["grpc_type", "grpc_service", "grpc_method"] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return (method, code, duration) => {
    const labels = {
      grpc_type: method.methodKind,
      grpc_service: method.parent.typeName,
      grpc_method: method.name,
    };
    handled.inc({ ...labels, grpc_code: grpcCodeName(code) });
    seconds.observe(labels, duration);
  };
}
