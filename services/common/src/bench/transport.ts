/**
 * The client side of the hop between services, in one process: the deprecated hand-written GrpcClient against
 * connect's createClient over createGrpcJsTransport, with and without the retry interceptor (5 rounds of 5000 calls,
 * 16 concurrent, against one grpc-js server). A benchmark, not a test: it prints medians.
 * Usage: npx tsx services/common/src/bench/transport.ts
 */
import { createClient } from "@connectrpc/connect";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { createGrpcClient } from "../grpc-client.js";
import { bindGrpcServer, createGrpcServer, stopGrpcServer } from "../grpc-server.js";
import { createGrpcJsTransport, registerRoutes, retryIdempotent } from "../grpc-transport.js";

const server = createGrpcServer();
registerRoutes(server, (r) =>
  r.service(PredictService, { predict: (req) => ({ prediction: { label: req.text } }) }),
);
const port = await bindGrpcServer(server, "127.0.0.1", 0);
const address = `127.0.0.1:${port}`;
const old = createGrpcClient(PredictService, address);
const transport = createGrpcJsTransport({ address });
const fresh = createClient(PredictService, transport);
const retrying = createGrpcJsTransport({
  address,
  interceptors: [retryIdempotent({ attempts: 2, jitterMs: 50 })],
});
const fresh2 = createClient(PredictService, retrying);
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
  old: () => old.predict({ text: "hello" }, opts),
  transport: () => fresh.predict({ text: "hello" }, opts),
  "transport+retry": () => fresh2.predict({ text: "hello" }, opts),
};
for (const call of Object.values(calls)) await run(call, 2000);
const results: Record<string, { rps: number; cpuUsPerCall: number }[]> = {};
for (let round = 0; round < 5; round++) {
  for (const [name, call] of Object.entries(calls)) {
    const runs = results[name] ?? [];
    runs.push(await run(call, 5000));
    results[name] = runs;
  }
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [name, rs] of Object.entries(results)) {
  console.log(
    name,
    "req/s",
    Math.round(median(rs.map((r) => r.rps)) as number),
    "cpu µs/call (client+server, one process)",
    (median(rs.map((r) => r.cpuUsPerCall)) as number).toFixed(1),
  );
}
old.close();
transport.close();
retrying.close();
await stopGrpcServer(server, 1000);
