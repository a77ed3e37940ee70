import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createRouterTransport,
  type HandlerContext,
  type ServiceImpl,
} from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import {
  CLIENT_REQUEST_ID_HEADER,
  freePort,
  REQUEST_ID_HEADER,
  type Routes,
  registerRoutes,
} from "@shadowmesh/common";
import { Health, HealthCheckResponse_ServingStatus } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";
import {
  MetricsService,
  type MetricsService as MetricsServiceDesc,
  ShadowReportSchema,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import {
  type PredictResponseSchema,
  PredictService,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { vi } from "vitest";
import { type TransportFactory, type UpstreamTransport, upstreamTransport } from "../upstream.js";

/**
 * Fakes of model-service and metrics-service for tests, serving the real contracts as connect routes. They record
 * every call (request, request id, deadline) and let a test decide each answer. A fake runs in memory
 * (`FakeNetwork`: connect's `createRouterTransport`, no socket) or, where the socket is what a test is about
 * (deadlines on the wire, a dead port, reconnects, a process), on a real grpc-js server on 127.0.0.1 port 0
 * (`serveFake`).
 */

export interface RecordedCall {
  method: string;
  request: unknown;
  requestId: string | null;
  /** The caller's own id, as app-service passed it on (`x-client-request-id`). */
  clientRequestId: string | null;
  /** The time left until the call's deadline when it arrived, in ms. */
  timeoutMs: number | undefined;
}

/** A fake upstream: its routes (served by connect's router in memory, by `registerRoutes` on grpc-js) and its calls. */
export interface Fake {
  readonly calls: RecordedCall[];
  routes: Routes;
}

export type ServingStatus = "SERVING" | "NOT_SERVING";

export interface FakeModelService extends Fake {
  /** Its grpc.health.v1 status (service ""), SERVING at first. */
  readonly health: { set(status: ServingStatus): void };
}

/** A deterministic toy classifier: "spam" when the text mentions money or prizes. */
export function toyPrediction(
  text: string,
  requestId: string,
  modelName = "spam-v1",
): MessageInitShape<typeof PredictResponseSchema>["prediction"] {
  const spammy = /free|win|prize|\$\$\$|cash/i.test(text);
  const spam = spammy ? 0.93 : 0.08;
  return {
    label: spammy ? "spam" : "ham",
    scores: [
      { label: "ham", probability: 1 - spam },
      { label: "spam", probability: spam },
    ],
    modelName,
    modelVersion: modelName === "spam-v2" ? "2.0.0" : "1.0.0",
    requestId,
    inferenceMs: 0.05,
  };
}

export type PredictImpl = Partial<ServiceImpl<typeof PredictService>>;

function record(calls: RecordedCall[], method: string, request: unknown, context: HandlerContext) {
  calls.push({
    method,
    request,
    requestId: context.requestHeader.get(REQUEST_ID_HEADER),
    clientRequestId: context.requestHeader.get(CLIENT_REQUEST_ID_HEADER),
    timeoutMs: context.timeoutMs(),
  });
}

/**
 * A fake model-service. By default it classifies with `toyPrediction`; `overrides` replace single methods (they are
 * called after the call is recorded). Health starts SERVING.
 */
export function fakeModelService(
  modelName = "spam-v1",
  overrides: () => PredictImpl = () => ({}),
): FakeModelService {
  const calls: RecordedCall[] = [];
  let status: ServingStatus = "SERVING";
  const impl: ServiceImpl<typeof PredictService> = {
    predict: async (request, context) => {
      record(calls, "Predict", request, context);
      const override = overrides().predict;
      if (override) {
        return override(request, context);
      }
      const requestId = context.requestHeader.get(REQUEST_ID_HEADER) ?? "";
      return { prediction: toyPrediction(request.text, requestId, modelName) };
    },
    predictBatch: async (request, context) => {
      record(calls, "PredictBatch", request, context);
      const override = overrides().predictBatch;
      if (override) {
        return override(request, context);
      }
      const requestId = context.requestHeader.get(REQUEST_ID_HEADER) ?? "";
      return { predictions: request.texts.map((text) => toyPrediction(text, requestId, modelName) ?? {}) };
    },
    getModel: async (request, context) => {
      record(calls, "GetModel", request, context);
      const override = overrides().getModel;
      if (override) {
        return override(request, context);
      }
      return {
        model: {
          name: modelName,
          version: "1.0.0",
          labels: ["ham", "spam"],
          maxTextChars: 20_000,
          maxBatchSize: 64,
        },
      };
    },
  };
  const health: Partial<ServiceImpl<typeof Health>> = {
    check: () => ({
      status:
        status === "SERVING"
          ? HealthCheckResponse_ServingStatus.SERVING
          : HealthCheckResponse_ServingStatus.NOT_SERVING,
    }),
  };
  return {
    calls,
    health: { set: (next) => (status = next) },
    routes: (router) => {
      router.service(PredictService, impl);
      router.service(Health, health);
    },
  };
}

export type MetricsImpl = Partial<ServiceImpl<typeof MetricsServiceDesc>>;

/** A fake metrics-service: only the methods in `impl` are implemented (the rest answer UNIMPLEMENTED). */
export function fakeMetricsService(impl: MetricsImpl): Fake {
  const calls: RecordedCall[] = [];
  const recorded: Record<string, unknown> = {};
  for (const method of MetricsService.methods) {
    const fn = (impl as Record<string, ((request: unknown, context: HandlerContext) => unknown) | undefined>)[
      method.localName
    ];
    if (fn) {
      recorded[method.localName] = (request: unknown, context: HandlerContext) => {
        record(calls, method.name, request, context);
        return fn(request, context);
      };
    }
  }
  return { calls, routes: (router) => router.service(MetricsService, recorded as MetricsImpl) };
}

/**
 * Upstreams in memory: `add` gives a fake an address (a name nobody resolves), and `transport` — the factory
 * `createApp` takes — connects that address to the fake through connect's `createRouterTransport`. Any other address
 * gets the production transport, so a test can mix in-memory fakes with real sockets (a dead port, a process).
 */
export class FakeNetwork {
  readonly #fakes = new Map<string, Fake>();

  /** Registers `fake` and returns its address (`<name>-<n>.fake:1`). */
  add(fake: Fake, name = "upstream"): string {
    const address = `${name}-${this.#fakes.size + 1}.fake:1`;
    this.#fakes.set(address, fake);
    return address;
  }

  readonly transport: TransportFactory = (address) => {
    const fake = this.#fakes.get(address);
    return fake ? inMemoryTransport(fake) : upstreamTransport(address);
  };
}

/** The in-memory transport to one fake. */
export function inMemoryTransport(fake: Fake): UpstreamTransport {
  const transport = createRouterTransport((router) => fake.routes(router));
  return {
    unary: transport.unary.bind(transport),
    stream: transport.stream.bind(transport),
    close: () => {},
  };
}

export interface FakeServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `fake` on a real grpc-js server on 127.0.0.1 (`port` 0 = any free port; a given port = the same place
 * again, to test reconnects), through the same adapter the real services use.
 */
export async function serveFake(fake: Fake, port = 0): Promise<FakeServer> {
  const server = new grpc.Server();
  registerRoutes(server, (router) => fake.routes(router));
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, actual) =>
      error ? reject(error) : resolve(actual),
    ),
  );
  return {
    address: `127.0.0.1:${bound}`,
    port: bound,
    close: async () => server.forceShutdown(),
  };
}

/** A small report with `pairs` agreeing pairs. */
export function fakeReport(pairs: number, candidate = "") {
  return create(ShadowReportSchema, {
    candidate,
    totals: { requestCount: BigInt(pairs), pairCount: BigInt(pairs) },
    agreement: { agreeingCount: BigInt(pairs), pairCount: BigInt(pairs), rate: pairs > 0 ? 1 : 0 },
  });
}

/** Waits until the handler is aborted (the caller's deadline passed or it went away), then fails. */
export function hang(context: HandlerContext): Promise<never> {
  return new Promise((_, reject) => {
    const fail = () => reject(new ConnectError("aborted", Code.Canceled));
    if (context.signal.aborted) {
      fail();
    } else {
      context.signal.addEventListener("abort", fail, { once: true });
    }
  });
}

/**
 * An address where nothing listens: a port from this worker's block below the ephemeral range (`freePort`), so no
 * other test's port-0 server can be handed it while this test expects it dead.
 */
export async function deadAddress(): Promise<string> {
  return `127.0.0.1:${await freePort()}`;
}

export interface StandInProcess {
  readonly address: string;
  readonly child: ChildProcess;
  /** SIGCONT (in case it was stopped), then SIGKILL; resolves when it has exited. */
  kill(): Promise<void>;
}

/**
 * A model-service stand-in in its own process (`dist/bench/noop-upstream.js`: the real grpc-js server stack and
 * contract, health SERVING, a fixed prediction named "bench") on a free port, for tests that stop a process with
 * SIGSTOP. Needs the build (`npx tsc -b`).
 */
export async function startStandInProcess(): Promise<StandInProcess> {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
  const main = path.join(root, "services/app-service/dist/bench/noop-upstream.js");
  if (!existsSync(main)) {
    throw new Error(`${main} is missing: build first (npx tsc -b)`);
  }
  const port = await freePort();
  const child = spawn(process.execPath, [main, String(port)], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGCONT");
      child.kill("SIGKILL");
      await exited;
    }
  };
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  try {
    await vi.waitUntil(
      () => {
        if (child.exitCode !== null) {
          throw new Error(`the stand-in exited (${child.exitCode}): ${output}`);
        }
        return output.includes("noop upstream serving on");
      },
      { timeout: 20_000, interval: 25 },
    );
  } catch (error) {
    await kill();
    throw error;
  }
  return { address: `127.0.0.1:${port}`, child, kill };
}
