import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { status } from "@grpc/grpc-js";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { Registry } from "prom-client";
import { describe, expect, it, vi } from "vitest";
import { grpcCodeName } from "./grpc-codes.js";
import { createGrpcServerMetrics } from "./grpc-metrics.js";
import { bindGrpcServer, createGrpcServer, stopGrpcServer } from "./grpc-server.js";
import { createGrpcJsTransport, registerRoutes } from "./grpc-transport.js";

/** grpc-js's SCREAMING_SNAKE name as a PascalCase label ("DEADLINE_EXCEEDED" → "DeadlineExceeded"). */
const pascal = (name: string) =>
  name
    .toLowerCase()
    .split("_")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");

describe("grpcCodeName: the grpc_code label value is connect's Code name", () => {
  it("maps every Code value to its enum name, and 0 to OK", () => {
    const codes = Object.values(Code).filter((value): value is Code => typeof value === "number");
    expect(codes).toHaveLength(16);
    for (const code of codes) {
      expect(grpcCodeName(code)).toBe(Code[code]);
    }
    expect(grpcCodeName(0)).toBe("OK");
    expect(codes.map(grpcCodeName)).toEqual([
      "Canceled",
      "Unknown",
      "InvalidArgument",
      "DeadlineExceeded",
      "NotFound",
      "AlreadyExists",
      "PermissionDenied",
      "ResourceExhausted",
      "FailedPrecondition",
      "Aborted",
      "OutOfRange",
      "Unimplemented",
      "Internal",
      "Unavailable",
      "DataLoss",
      "Unauthenticated",
    ]);
  });

  it("differs from grpc-js's status names only in code 1: Canceled, not Cancelled", () => {
    const differing: string[] = [];
    expect(Object.values(status).filter((value) => typeof value === "number")).toHaveLength(17);
    for (const [name, value] of Object.entries(status)) {
      if (typeof value !== "number") continue;
      // The names before: grpc-js's, PascalCased, with "OK" for 0.
      const before = value === 0 ? "OK" : pascal(name);
      if (grpcCodeName(value) !== before) differing.push(`${before} → ${grpcCodeName(value)}`);
    }
    expect(differing).toEqual(["Cancelled → Canceled"]);
  });

  it("a number outside the enum is Code<n>, never undefined", () => {
    expect([17, -1, 1.5, 999].map(grpcCodeName)).toEqual(["Code17", "Code-1", "Code1.5", "Code999"]);
  });

  it('a call the caller cancels is counted as grpc_code="Canceled" by a real grpc-js server', async () => {
    const registry = new Registry();
    const server = createGrpcServer();
    let inHandler = 0;
    registerRoutes(
      server,
      (router) =>
        router.service(PredictService, {
          predict: async (request, context) => {
            if (request.text === "bad") throw new ConnectError("no", Code.InvalidArgument);
            inHandler++;
            await new Promise((resolve) => context.signal.addEventListener("abort", resolve));
            throw new ConnectError("gone", Code.Canceled);
          },
        }),
      { observer: createGrpcServerMetrics(registry) },
    );
    const port = await bindGrpcServer(server, "127.0.0.1", 0);
    const transport = createGrpcJsTransport({ address: `127.0.0.1:${port}` });
    try {
      const client = createClient(PredictService, transport);
      await expect(client.predict({ text: "bad" })).rejects.toMatchObject({ code: Code.InvalidArgument });
      const controller = new AbortController();
      const call = client.predict({ text: "hang" }, { signal: controller.signal });
      await vi.waitFor(() => expect(inHandler).toBe(1), { timeout: 5000 });
      controller.abort();
      await expect(call).rejects.toMatchObject({ code: Code.Canceled });
      const codes = async () =>
        (await registry.getSingleMetric("grpc_server_handled_total")?.get())?.values.map((v) => [
          v.labels.grpc_code,
          v.value,
        ]);
      await vi.waitFor(
        async () =>
          expect(await codes()).toEqual(
            expect.arrayContaining([
              ["InvalidArgument", 1],
              ["Canceled", 1],
            ]),
          ),
        { timeout: 5000 },
      );
      expect((await codes())?.map(([code]) => code)).not.toContain("Cancelled");
    } finally {
      transport.close();
      await stopGrpcServer(server, 1000);
    }
  });
});
