import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { afterEach, describe, expect, it } from "vitest";
import {
  type Fake,
  FakeNetwork,
  type FakeServer,
  fakeMetricsService,
  fakeModelService,
  fakeReport,
  type MetricsImpl,
  serveFake,
} from "./testing/fakes.js";
import { type RunningApp, startApp } from "./testing/harness.js";

/**
 * The browser-facing MetricsService methods, forwarded to a fake metrics-service (in memory; on a real socket where
 * the socket is the point: metrics-service going down).
 */

const servers: FakeServer[] = [];
let running: RunningApp | undefined;

afterEach(async () => {
  await running?.close();
  running = undefined;
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(impl: MetricsImpl, options: { socket?: boolean } = {}) {
  const network = new FakeNetwork();
  const metrics: Fake = fakeMetricsService(impl);
  let metricsAddress: string;
  let server: FakeServer | undefined;
  if (options.socket) {
    server = await serveFake(metrics);
    servers.push(server);
    metricsAddress = server.address;
  } else {
    metricsAddress = network.add(metrics, "metrics");
  }
  running = await startApp(
    {
      MODEL_SERVICE_ADDRESS: network.add(fakeModelService(), "primary"),
      METRICS_SERVICE_ADDRESS: metricsAddress,
    },
    network,
  );
  const transport = createConnectTransport({ baseUrl: running.baseUrl, httpVersion: "1.1" });
  return { metrics, server, client: createClient(MetricsService, transport), baseUrl: running.baseUrl };
}

async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to fail");
}

describe("forwarding to metrics-service", () => {
  it("forwards SubmitFeedback with the request id it is about and the feedback token", async () => {
    const { metrics, client } = await start({ submitFeedback: () => ({ requestKnown: true }) });
    const response = await client.submitFeedback({
      requestId: "req-9",
      batchIndex: 2,
      label: "spam",
      feedbackToken: "token-from-the-prediction",
    });
    expect(response.requestKnown).toBe(true);
    expect(metrics.calls[0]?.request).toMatchObject({
      requestId: "req-9",
      batchIndex: 2,
      label: "spam",
      feedbackToken: "token-from-the-prediction",
    });
  });

  it("passes metrics-service's refusal of a missing or wrong token through as PERMISSION_DENIED", async () => {
    const { client } = await start({
      submitFeedback: () => {
        throw new ConnectError("the feedback token does not match this prediction", Code.PermissionDenied);
      },
    });
    const error = await client.submitFeedback({ requestId: "req-9", label: "spam" }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(error?.rawMessage).toMatch(/token/);
  });

  it("forwards GetShadowReport", async () => {
    const { client } = await start({ getShadowReport: () => ({ report: fakeReport(7) }) });
    const response = await client.getShadowReport({});
    expect(response.report?.totals?.pairCount).toBe(7n);
  });

  it("streams WatchShadowReport updates to Connect and gRPC-web clients", async () => {
    const { baseUrl } = await start({
      watchShadowReport: async function* () {
        yield { report: fakeReport(1) };
        yield { report: fakeReport(2) };
        yield { report: fakeReport(3) };
      },
    });
    for (const transport of [
      createConnectTransport({ baseUrl, httpVersion: "1.1" }),
      createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
    ]) {
      const pairs: bigint[] = [];
      for await (const update of createClient(MetricsService, transport).watchShadowReport({})) {
        pairs.push(update.report?.totals?.pairCount ?? -1n);
      }
      expect(pairs).toEqual([1n, 2n, 3n]);
    }
  });

  it("passes UNIMPLEMENTED through while metrics-service lacks a method", async () => {
    const { client } = await start({});
    const error = await failure(client.getShadowReport({}));
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toBe("metrics-service does not implement GetShadowReport yet");
    const streamError = await failure(
      (async () => {
        for await (const _update of client.watchShadowReport({})) {
          // no update is expected
        }
      })(),
    );
    expect(streamError.code).toBe(Code.Unimplemented);
  });

  it("answers UNAVAILABLE when metrics-service is down", async () => {
    const { client, server } = await start(
      { getShadowReport: () => ({ report: fakeReport(1) }) },
      { socket: true },
    );
    expect((await client.getShadowReport({})).report?.totals?.pairCount).toBe(1n);
    await server?.close();
    const error = await failure(client.getShadowReport({}));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe("metrics-service is unavailable; try again shortly");
  });

  it("does not route ReportPredictions: only model-services may report", async () => {
    const { client, metrics } = await start({ reportPredictions: () => ({ acceptedCount: 1 }) });
    const error = await failure(client.reportPredictions({ records: [{ requestId: "forged" }] }));
    expect(error.code).toBe(Code.Unimplemented);
    expect(metrics.calls).toHaveLength(0);
  });
});
