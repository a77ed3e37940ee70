import { getEventListeners } from "node:events";
import { create } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  createClient,
  createRouterTransport,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import {
  PredictRequestSchema,
  PredictService,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bindGrpcServer, createGrpcServer, stopGrpcServer } from "./grpc-server.js";
import {
  createGrpcJsTransport,
  type GrpcJsTransport,
  registerRoutes,
  retryIdempotent,
} from "./grpc-transport.js";

/** Resolves when the handler's call ends without it (cancel, deadline). */
const aborted = (context: HandlerContext) =>
  new Promise<unknown>((resolve) =>
    context.signal.addEventListener("abort", () => resolve(context.signal.reason)),
  );

describe("createGrpcJsTransport: connect clients over a grpc-js channel", () => {
  let server: grpc.Server;
  let transport: GrpcJsTransport;
  const seen: {
    headers: Record<string, string>;
    hanging: number;
    cancelled: number;
    timeouts: (number | undefined)[];
  } = { headers: {}, hanging: 0, cancelled: 0, timeouts: [] };
  const predict: Partial<ServiceImpl<typeof PredictService>> = {
    async predict(request, context) {
      seen.headers = Object.fromEntries(context.requestHeader.entries());
      seen.timeouts.push(context.timeoutMs());
      if (request.text === "missing") {
        throw new ConnectError("no such thing", Code.NotFound, { "x-why": "asked for it" });
      }
      if (request.text === "hang") {
        seen.hanging++;
        await aborted(context);
        seen.cancelled++;
        throw new ConnectError("gone", Code.Canceled);
      }
      if (request.text === "crash") {
        throw new Error("a bug");
      }
      context.responseHeader.set("x-request-id", context.requestHeader.get("x-request-id") ?? "");
      context.responseTrailer.set("x-trailer", "t1");
      return { prediction: { label: request.text.toUpperCase(), requestId: "r1" } };
    },
  };
  const metrics: Partial<ServiceImpl<typeof MetricsService>> = {
    async *watchShadowReport(request, context) {
      const count = request.maxDisagreements;
      context.responseHeader.set("x-stream", "yes");
      for (let i = 0; i < count; i++) {
        yield { report: { latencyP99Ratio: i } };
      }
      if (count === 3) {
        throw new ConnectError("broke after three", Code.DataLoss);
      }
      if (count === 0) {
        seen.hanging++;
        await aborted(context);
        seen.cancelled++;
      }
    },
  };

  beforeAll(async () => {
    server = createGrpcServer();
    registerRoutes(server, (router) =>
      router.service(PredictService, predict).service(MetricsService, metrics),
    );
    const port = await bindGrpcServer(server, "127.0.0.1", 0);
    transport = createGrpcJsTransport({ address: `127.0.0.1:${port}` });
  });
  afterAll(async () => {
    transport?.close();
    await stopGrpcServer(server, 1000);
  });

  it("unary: request headers become metadata; response header and trailer come back", async () => {
    const client = createClient(PredictService, transport);
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const response = await client.predict(
      { text: "spam" },
      {
        headers: { "x-request-id": "abc", "x-token-bin": "AQID", "x-odd-bin": "not base64!" },
        onHeader: (h) => {
          header = h;
        },
        onTrailer: (t) => {
          trailer = t;
        },
      },
    );
    expect(response.prediction?.label).toBe("SPAM");
    expect(seen.headers["x-request-id"]).toBe("abc");
    expect(header?.get("x-request-id")).toBe("abc");
    expect(trailer?.get("x-trailer")).toBe("t1");
    // A message made by the caller is sent as is.
    expect((await client.predict(create(PredictRequestSchema, { text: "ham" }))).prediction?.label).toBe(
      "HAM",
    );
  });

  it("errors are ConnectErrors with the gRPC code, message and metadata; unexpected ones are INTERNAL", async () => {
    const client = createClient(PredictService, transport);
    const error = await client.predict({ text: "missing" }).catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.NotFound);
    expect((error as ConnectError).rawMessage).toBe("no such thing");
    expect((error as ConnectError).metadata.get("x-why")).toBe("asked for it");
    await expect(client.predict({ text: "crash" })).rejects.toMatchObject({ code: Code.Internal });
  });

  it("timeoutMs is the grpc-js deadline: the server sees it and the caller gets DEADLINE_EXCEEDED", async () => {
    const client = createClient(PredictService, transport);
    const before = seen.cancelled;
    await expect(client.predict({ text: "hang" }, { timeoutMs: 200 })).rejects.toMatchObject({
      code: Code.DeadlineExceeded,
    });
    expect(seen.timeouts.at(-1)).toBeGreaterThan(0);
    expect(seen.timeouts.at(-1)).toBeLessThanOrEqual(200);
    await expect.poll(() => seen.cancelled, { timeout: 5000 }).toBe(before + 1);
  });

  it("signal → cancel: the caller gets CANCELED at once and the server sees the cancellation", async () => {
    const client = createClient(PredictService, transport);
    const before = seen.cancelled;
    const hanging = seen.hanging;
    const controller = new AbortController();
    const call = client.predict({ text: "hang" }, { signal: controller.signal });
    await expect.poll(() => seen.hanging, { timeout: 5000, interval: 5 }).toBe(hanging + 1); // in the handler
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: Code.Canceled });
    await expect.poll(() => seen.cancelled, { timeout: 5000 }).toBe(before + 1);
    const already = new AbortController();
    already.abort();
    await expect(client.predict({ text: "x" }, { signal: already.signal })).rejects.toMatchObject({
      code: Code.Canceled,
    });
  });

  it("a caller's long-lived signal keeps no listener per call: each finished call removes its own", async () => {
    const client = createClient(PredictService, transport);
    const controller = new AbortController();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        client.predict({ text: i % 2 === 0 ? "ok" : "missing" }, { signal: controller.signal }).then(
          (response) => response.prediction?.label,
          (error: unknown) => ConnectError.from(error).code,
        ),
      ),
    );
    expect(results.filter((r) => r === "OK")).toHaveLength(4);
    expect(results.filter((r) => r === Code.NotFound)).toHaveLength(4);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("interceptors over the grpc-js transport: a header set on the request, or on a copy of it, is sent; a copied response keeps header and trailer", async () => {
    const port = Number(transport.raw.getChannel().getTarget().split(":").at(-1));
    let seenByInterceptor: string | null | undefined;
    const through = createGrpcJsTransport({
      address: `127.0.0.1:${port}`,
      interceptors: [
        (next) => async (req) => {
          req.header.set("x-request-id", "set-in-place");
          // A copy of the response keeps its header and trailer.
          return { ...(await next(req)) };
        },
        (next) => async (req) => {
          const response = await next({
            ...req,
            header: new Headers({ "x-request-id": `${req.header.get("x-request-id")}+copy` }),
          });
          seenByInterceptor = response.header.get("x-request-id");
          return response;
        },
      ],
    });
    try {
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      const response = await createClient(PredictService, through).predict(
        { text: "ham" },
        {
          headers: { "x-request-id": "from-caller" },
          onHeader: (h) => {
            header = h;
          },
          onTrailer: (t) => {
            trailer = t;
          },
        },
      );
      expect(response.prediction?.label).toBe("HAM");
      expect(header?.get("x-request-id")).toBe("set-in-place+copy");
      expect(trailer?.get("x-trailer")).toBe("t1");
      expect(seen.headers["x-request-id"]).toBe("set-in-place+copy");
      expect(seenByInterceptor).toBe("set-in-place+copy");
    } finally {
      through.close();
    }
  });

  it("server streaming: every message, the header, and an error after the last message", async () => {
    const client = createClient(MetricsService, transport);
    let header: Headers | undefined;
    const counts: number[] = [];
    for await (const update of client.watchShadowReport(
      { maxDisagreements: 2 },
      {
        onHeader: (h) => {
          header = h;
        },
      },
    )) {
      counts.push(update.report?.latencyP99Ratio ?? -1);
    }
    expect(counts).toEqual([0, 1]);
    expect(header?.get("x-stream")).toBe("yes");
    const got: number[] = [];
    const failing = async () => {
      for await (const update of client.watchShadowReport({ maxDisagreements: 3 })) {
        got.push(update.report?.latencyP99Ratio ?? -1);
      }
    };
    await expect(failing()).rejects.toMatchObject({ code: Code.DataLoss, rawMessage: "broke after three" });
    expect(got).toEqual([0, 1, 2]);
  });

  it("server streaming: abort and deadline end the stream with CANCELED / DEADLINE_EXCEEDED; the server sees it", async () => {
    const client = createClient(MetricsService, transport);
    const before = seen.cancelled;
    const hanging = seen.hanging;
    const controller = new AbortController();
    const reading = (async () => {
      for await (const _ of client.watchShadowReport(
        { maxDisagreements: 0 },
        { signal: controller.signal },
      )) {
        // none
      }
    })();
    await expect.poll(() => seen.hanging, { timeout: 5000, interval: 5 }).toBe(hanging + 1); // streaming
    controller.abort();
    await expect(reading).rejects.toMatchObject({ code: Code.Canceled });
    const timed = (async () => {
      for await (const _ of client.watchShadowReport({ maxDisagreements: 0 }, { timeoutMs: 150 })) {
        // none
      }
    })();
    await expect(timed).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    await expect.poll(() => seen.cancelled, { timeout: 5000 }).toBe(before + 2);
  });

  it("client and bidi streaming are UNIMPLEMENTED by this transport", async () => {
    const method = { ...MetricsService.method.watchShadowReport, methodKind: "client_streaming" as const };
    await expect(
      transport.stream(
        method as unknown as typeof MetricsService.method.watchShadowReport,
        undefined,
        undefined,
        undefined,
        (async function* () {
          yield {};
        })(),
      ),
    ).rejects.toMatchObject({ code: Code.Unimplemented });
  });

  it("a peer that is not listening is UNAVAILABLE (not a hang)", async () => {
    const down = createGrpcJsTransport({ address: "127.0.0.1:1" });
    try {
      await expect(
        createClient(PredictService, down).predict({ text: "x" }, { timeoutMs: 5000 }),
      ).rejects.toMatchObject({ code: Code.Unavailable });
    } finally {
      down.close();
    }
  });
});

describe("retryIdempotent: retries from the method's declared idempotency_level", () => {
  /** A router transport whose every method fails with `code` the first `failures` times. */
  function flaky(failures: number, code = Code.Unavailable, attempts = 3, jitterMs = 0) {
    const calls: string[] = [];
    let left = failures;
    const fail = (name: string) => {
      calls.push(name);
      if (left > 0) {
        left--;
        throw new ConnectError("try again", code);
      }
    };
    const transport = createRouterTransport(
      (router) =>
        router
          .service(PredictService, {
            predict: () => {
              fail("predict");
              return { prediction: { label: "ham" } };
            },
          })
          .service(MetricsService, {
            reportPredictions: () => {
              fail("reportPredictions");
              return { acceptedCount: 1 };
            },
          }),
      { transport: { interceptors: [retryIdempotent({ attempts, jitterMs, random: () => 1 })] } },
    );
    return { calls, transport };
  }

  it("levels as declared in proto/: Predict NO_SIDE_EFFECTS, ReportPredictions IDEMPOTENT", () => {
    expect(PredictService.method.predict.idempotency).toBe(MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS);
    expect(MetricsService.method.reportPredictions.idempotency).toBe(
      MethodOptions_IdempotencyLevel.IDEMPOTENT,
    );
  });

  it("NO_SIDE_EFFECTS: a call that fails once with UNAVAILABLE succeeds on the second attempt", async () => {
    const { calls, transport } = flaky(1);
    const response = await createClient(PredictService, transport).predict({ text: "x" });
    expect(response.prediction?.label).toBe("ham");
    expect(calls).toEqual(["predict", "predict"]);
  });

  it("IDEMPOTENT: retried the same way", async () => {
    const { calls, transport } = flaky(1);
    await createClient(MetricsService, transport).reportPredictions({});
    expect(calls).toEqual(["reportPredictions", "reportPredictions"]);
  });

  it("IDEMPOTENCY_UNKNOWN (a test-only descriptor of the same method): never retried", async () => {
    const { calls, transport } = flaky(1);
    const unknown = {
      ...PredictService.method.predict,
      idempotency: MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN,
    };
    await expect(
      transport.unary(unknown, undefined, undefined, undefined, { text: "x" }),
    ).rejects.toMatchObject({ code: Code.Unavailable });
    expect(calls).toEqual(["predict"]);
  });

  it("only UNAVAILABLE is retried, and at most `attempts` times in all", async () => {
    const other = flaky(1, Code.Internal);
    await expect(createClient(PredictService, other.transport).predict({ text: "x" })).rejects.toMatchObject({
      code: Code.Internal,
    });
    expect(other.calls).toEqual(["predict"]);
    const many = flaky(10, Code.Unavailable, 3);
    await expect(createClient(PredictService, many.transport).predict({ text: "x" })).rejects.toMatchObject({
      code: Code.Unavailable,
    });
    expect(many.calls).toEqual(["predict", "predict", "predict"]);
  });

  it("no retry when the deadline leaves no room for the pause", async () => {
    const { calls, transport } = flaky(1, Code.Unavailable, 3, 500);
    await expect(
      createClient(PredictService, transport).predict({ text: "x" }, { timeoutMs: 200 }),
    ).rejects.toMatchObject({ code: Code.Unavailable });
    expect(calls).toEqual(["predict"]);
    const roomy = flaky(1, Code.Unavailable, 3, 20);
    await createClient(PredictService, roomy.transport).predict({ text: "x" }, { timeoutMs: 5000 });
    expect(roomy.calls).toEqual(["predict", "predict"]);
  });

  it("over the grpc-js transport: a server that answers UNAVAILABLE once is retried, within the deadline", async () => {
    let calls = 0;
    const server = createGrpcServer();
    registerRoutes(server, (router) =>
      router.service(PredictService, {
        predict: () => {
          calls++;
          if (calls === 1) throw new ConnectError("warming up", Code.Unavailable);
          return { prediction: { label: "ham" } };
        },
      }),
    );
    const port = await bindGrpcServer(server, "127.0.0.1", 0);
    const transport = createGrpcJsTransport({
      address: `127.0.0.1:${port}`,
      interceptors: [retryIdempotent({ attempts: 2, jitterMs: 10 })],
    });
    try {
      const response = await createClient(PredictService, transport).predict(
        { text: "x" },
        { timeoutMs: 5000 },
      );
      expect(response.prediction?.label).toBe("ham");
      expect(calls).toBe(2);
    } finally {
      transport.close();
      await stopGrpcServer(server, 1000);
    }
  });
});
