import type { DescMethod } from "@bufbuild/protobuf";
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
  // prom-client hashes the label set on every inc/observe; binding the children once per method (and code) keeps
  // the per-call cost of these metrics to two map lookups.
  interface Children {
    labels: { grpc_type: string; grpc_service: string; grpc_method: string };
    seconds: ReturnType<typeof seconds.labels>;
    handled: Map<number, ReturnType<typeof handled.labels>>;
  }
  const byMethod = new Map<DescMethod, Children>();
  return (method, code, duration) => {
    let children = byMethod.get(method);
    if (!children) {
      const labels = {
        grpc_type: method.methodKind,
        grpc_service: method.parent.typeName,
        grpc_method: method.name,
      };
      children = { labels, seconds: seconds.labels(labels), handled: new Map() };
      byMethod.set(method, children);
    }
    let counter = children.handled.get(code);
    if (!counter) {
      counter = handled.labels({ ...children.labels, grpc_code: grpcCodeName(code) });
      children.handled.set(code, counter);
    }
    counter.inc();
    children.seconds.observe(duration);
  };
}
