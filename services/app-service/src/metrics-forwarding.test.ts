import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { afterEach, describe, expect, it, vi } from "vitest";
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

  it("forwards the candidate selector of GetShadowReport and WatchShadowReport unchanged", async () => {
    const { client, metrics } = await start({
      getShadowReport: (request) => ({ report: fakeReport(4, request.candidate) }),
      watchShadowReport: async function* (request) {
        yield { report: fakeReport(5, request.candidate) };
      },
    });
    const report = await client.getShadowReport({ candidate: "spam-lite", window: { seconds: 3600n } });
    expect(report.report?.candidate).toBe("spam-lite");
    const updates: string[] = [];
    for await (const update of client.watchShadowReport({ candidate: "spam-v2" })) {
      updates.push(update.report?.candidate ?? "");
    }
    expect(updates).toEqual(["spam-v2"]);
    expect(
      metrics.calls.map((call) => [call.method, (call.request as { candidate: string }).candidate]),
    ).toEqual([
      ["GetShadowReport", "spam-lite"],
      ["WatchShadowReport", "spam-v2"],
    ]);
    expect(metrics.calls[0]?.request).toMatchObject({ window: { seconds: 3600n } });
  });

  it("passes metrics-service's refusal of a candidate selector through with its message", async () => {
    const { client } = await start({
      getShadowReport: (request) => {
        throw request.candidate === ""
          ? new ConnectError(
              "the window holds 2 candidates (spam-lite, spam-v2): name one in candidate",
              Code.FailedPrecondition,
            )
          : new ConnectError(`no candidate named "${request.candidate}" in the window`, Code.NotFound);
      },
      watchShadowReport: async function* () {
        yield* [];
        throw new ConnectError(
          "the window holds 2 candidates: name one in candidate",
          Code.FailedPrecondition,
        );
      },
    });
    const several = await failure(client.getShadowReport({}));
    expect(several.code).toBe(Code.FailedPrecondition);
    expect(several.rawMessage).toBe(
      "the window holds 2 candidates (spam-lite, spam-v2): name one in candidate",
    );
    const unknown = await failure(client.getShadowReport({ candidate: "<script>" }));
    expect(unknown.code).toBe(Code.NotFound);
    expect(unknown.rawMessage).toBe('no candidate named "<script>" in the window');
    const stream = await failure(
      (async () => {
        for await (const _update of client.watchShadowReport({})) {
          // no update is expected
        }
      })(),
    );
    expect(stream.code).toBe(Code.FailedPrecondition);
  });

  it("forwards ListCandidates, over POST and over GET (read-only), with the join key", async () => {
    const { client, metrics, baseUrl } = await start({
      listCandidates: () => ({ candidates: [fakeReport(3, "spam-lite"), fakeReport(9, "spam-v2")] }),
    });
    const response = await client.listCandidates({ window: { seconds: 600n } });
    expect(response.candidates.map((report) => [report.candidate, report.totals?.pairCount])).toEqual([
      ["spam-lite", 3n],
      ["spam-v2", 9n],
    ]);
    expect(metrics.calls[0]?.request).toMatchObject({ window: { seconds: 600n } });
    expect(metrics.calls[0]?.requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    const viaGet = createClient(
      MetricsService,
      createConnectTransport({ baseUrl, httpVersion: "1.1", useHttpGet: true }),
    );
    expect((await viaGet.listCandidates({})).candidates).toHaveLength(2);
    const grpcWeb = createClient(MetricsService, createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }));
    expect((await grpcWeb.listCandidates({})).candidates).toHaveLength(2);
    expect(metrics.calls.map((call) => call.method)).toEqual([
      "ListCandidates",
      "ListCandidates",
      "ListCandidates",
    ]);
  });

  it("passes UNIMPLEMENTED through while metrics-service lacks ListCandidates", async () => {
    const { client } = await start({});
    const error = await failure(client.listCandidates({}));
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toBe("metrics-service does not implement ListCandidates yet");
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

  it("ends a live WatchShadowReport stream with UNAVAILABLE (reconnect) when app-service stops", async () => {
    let upstreamEnded = false;
    const { client } = await start({
      watchShadowReport: async function* (_request, context) {
        yield { report: fakeReport(1) };
        // A live stream never ends by itself: it waits until its caller goes away.
        await new Promise<void>((resolve) => context.signal.addEventListener("abort", () => resolve()));
        upstreamEnded = true;
      },
    });
    const updates: bigint[] = [];
    const ended = (async () => {
      for await (const update of client.watchShadowReport({})) {
        updates.push(update.report?.totals?.pairCount ?? -1n);
      }
    })().then(
      () => undefined,
      (error: unknown) => ConnectError.from(error),
    );
    await vi.waitUntil(() => updates.length === 1, { timeout: 10_000, interval: 10 });
    // The production stop(): not ready → delay → drain (ends streams) → flush → close.
    const stopping = running?.close();
    running = undefined;
    const error = await ended;
    await stopping;
    expect(error?.code).toBe(Code.Unavailable);
    expect(error?.rawMessage).toBe("app-service is shutting down; reconnect");
    // The upstream stream was cancelled too, not left running.
    await vi.waitUntil(() => upstreamEnded, { timeout: 10_000, interval: 10 });
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
