import { readFileSync } from "node:fs";
import net from "node:net";

/**
 * Ports for a process that is about to be started with explicit port settings (the local mesh, tests, benchmarks).
 *
 * Two ways a "free a moment ago" port goes wrong:
 * - **the same port twice in one set** (seen: npm start's test under load got the shadow's gRPC port equal to
 *   metrics-service's). Asking the kernel for port 0, closing, and asking again can return the same port. Every
 *   server of a set is held open until the whole set is chosen, so the ports of one call are always different.
 * - **another test takes it first.** Between closing the probe and the service binding the port, any process that
 *   binds port 0 (every in-process test server does) may be handed the same ephemeral port. Under vitest each worker
 *   therefore picks from its own block of ports *below* the kernel's ephemeral range: no port-0 bind can land there,
 *   and two workers never share a block. Outside vitest (npm start's `ports: "free"`, the benchmarks) the kernel
 *   chooses.
 */
export async function freePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const block = workerBlock();
  const held: net.Server[] = [];
  try {
    if (!block) {
      for (let i = 0; i < count; i++) {
        held.push(await listen(0, host));
      }
    } else {
      for (let tried = 0; held.length < count; tried++) {
        if (tried >= block.size) {
          throw new Error(`no ${count} free ports in ${block.start}-${block.start + block.size - 1}`);
        }
        const port = block.start + (cursor++ % block.size);
        const server = await listen(port, host).catch(() => undefined);
        if (server) {
          held.push(server);
        }
      }
    }
    return held.map((server) => (server.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(held.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

/** {@link freePorts}, one per key: `await freePortsFor(["grpc", "metrics"])` → `{ grpc: 10412, metrics: 10413 }`. */
export async function freePortsFor<K extends string>(
  keys: readonly K[],
  host = "127.0.0.1",
): Promise<Record<K, number>> {
  const ports = await freePorts(keys.length, host);
  return Object.fromEntries(keys.map((key, i) => [key, ports[i]])) as Record<K, number>;
}

/** One port that was free a moment ago; see {@link freePorts}. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const [port] = await freePorts(1, host);
  return port as number;
}

const BLOCK_SIZE = 1000;
/** Where this module's walk through its block starts: random, so files run one after another in a worker spread out. */
let cursor = Math.floor(Math.random() * BLOCK_SIZE);

/** This vitest worker's block, or undefined outside vitest or when no block fits below the ephemeral range. */
function workerBlock(): { start: number; size: number } | undefined {
  const pool = Number(process.env.VITEST_POOL_ID);
  if (!Number.isInteger(pool) || pool < 1) {
    return undefined;
  }
  const ephemeralLow = ephemeralRangeLow();
  const lowest = 10_000;
  const blocks = Math.floor((ephemeralLow - lowest) / BLOCK_SIZE);
  if (blocks < 1) {
    return undefined;
  }
  return { start: lowest + ((pool - 1) % blocks) * BLOCK_SIZE, size: BLOCK_SIZE };
}

function ephemeralRangeLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32_768;
  } catch {
    return 32_768; // not Linux: the IANA dynamic range starts at 49152, so this is below it too
  }
}

function listen(port: number, host: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
