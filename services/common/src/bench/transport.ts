/**
 * The client side of the hop between services, in one process, against one grpc-js server: connect's createClient
 * over createGrpcJsTransport — without interceptors (the production path), with a caller's AbortSignal (as
 * app-service forwards), with the retry interceptor — against the floor: a bare grpc-js `makeUnaryRequest` with
 * the same path, serializers, metadata and deadline (what the transport wraps). Rounds of calls, 16 concurrent,
 * the variants interleaved within each round so that a busy machine slows them alike. A benchmark, not a test: it
 * prints medians and each variant's median ratio to the floor (with the range over rounds).
 * Usage: npx tsx services/common/src/bench/transport.ts [--rounds 7] [--calls 3000]
 */
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import {
  PredictRequestSchema,
  PredictService,
} from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { createServiceDefinition } from "../grpc-adapter.js";
import { bindGrpcServer, createGrpcServer, stopGrpcServer } from "../grpc-server.js";
import {
  createGrpcJsTransport,
  RECONNECT_OPTIONS,
  registerRoutes,
  retryIdempotent,
} from "../grpc-transport.js";

const { values: args } = parseArgs({
  options: { rounds: { type: "string", default: "7" }, calls: { type: "string", default: "3000" } },
});
const rounds = Number(args.rounds);
const callsPerRound = Number(args.calls);

const server = createGrpcServer();
registerRoutes(server, (r) =>
  r.service(PredictService, { predict: (req) => ({ prediction: { label: req.text } }) }),
);
const port = await bindGrpcServer(server, "127.0.0.1", 0);
const address = `127.0.0.1:${port}`;

// The floor: grpc-js itself, as the transport calls it, on its own channel.
const floor = new grpc.Client(address, grpc.credentials.createInsecure(), { ...RECONNECT_OPTIONS });
const predict = createServiceDefinition(PredictService).predict as grpc.MethodDefinition<unknown, unknown>;
const floorCall = () =>
  new Promise((resolve, reject) => {
    const metadata = new grpc.Metadata();
    metadata.set("x-request-id", "abc");
    floor.makeUnaryRequest(
      predict.path,
      predict.requestSerialize,
      predict.responseDeserialize,
      create(PredictRequestSchema, { text: "hello" }),
      metadata,
      { deadline: Date.now() + 2000 },
      (error, response) => (error ? reject(error) : resolve(response)),
    );
  });

const transport = createGrpcJsTransport({ address });
const client = createClient(PredictService, transport);
const retrying = createGrpcJsTransport({
  address,
  interceptors: [retryIdempotent({ attempts: 2, jitterMs: 50 })],
});
const retryingClient = createClient(PredictService, retrying);

type Call = () => Promise<unknown>;
async function run(call: Call, n: number, c = 16) {
  let i = 0;
  const t = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (i++ < n) await call();
    }),
  );
  const u = process.cpuUsage(cpu);
  return { rps: n / ((performance.now() - t) / 1000), cpuUsPerCall: (u.user + u.system) / n };
}
const opts = { headers: { "x-request-id": "abc" }, timeoutMs: 2000 };
const calls: Record<string, Call> = {
  "grpc-js floor": floorCall,
  transport: () => client.predict({ text: "hello" }, opts),
  "transport+signal": () =>
    client.predict({ text: "hello" }, { ...opts, signal: new AbortController().signal }),
  "transport+retry": () => retryingClient.predict({ text: "hello" }, opts),
};
for (const call of Object.values(calls)) await run(call, 1000);
const results: Record<string, { rps: number; cpuUsPerCall: number }[]> = {};
for (let round = 0; round < rounds; round++) {
  for (const [name, call] of Object.entries(calls)) {
    const runs = results[name] ?? [];
    runs.push(await run(call, callsPerRound));
    results[name] = runs;
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const base = results["grpc-js floor"] ?? [];
for (const [name, rs] of Object.entries(results)) {
  const ratios = rs.map((r, i) => r.rps / (base[i]?.rps ?? Number.NaN));
  console.log(
    name.padEnd(17),
    "req/s",
    String(Math.round(median(rs.map((r) => r.rps)))).padStart(6),
    "cpu µs/call (client+server, one process)",
    median(rs.map((r) => r.cpuUsPerCall))
      .toFixed(1)
      .padStart(6),
    "× floor",
    `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`,
  );
}
floor.close();
transport.close();
retrying.close();
await stopGrpcServer(server, 1000);
