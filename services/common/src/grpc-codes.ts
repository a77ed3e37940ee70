import { Code } from "@connectrpc/connect";

/**
 * The grpc-ecosystem label value of a status code (`grpc_code` on grpc_server_handled_total, `code` on app-service's
 * counters): connect's `Code` enum name — "OK" (0, not in `Code`), "Canceled", "InvalidArgument", "Unavailable", … —
 * spelled as go-grpc-prometheus spells them (its names come from grpc-go's `codes.Code.String()`; code 1 is
 * "Canceled" there too, where grpc-js's `status` says CANCELLED). A number outside the enum is `Code<n>`.
 */
export function grpcCodeName(code: number): string {
  if (code === 0) return "OK";
  const name = Number.isInteger(code)
    ? (Code as unknown as Record<number, string | undefined>)[code]
    : undefined;
  return name ?? `Code${code}`;
}
