import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createDrainer } from "./drain.js";

/**
 * app-service's drain against a client that never lets its keep-alive connections go idle (what wrk does): the
 * server must still close, every request it accepted must get its full answer, and the client must be told to
 * close (Connection: close) rather than have its connection cut mid-request.
 */
describe("draining the HTTP server", () => {
  const servers: http.Server[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      server.close();
    }
  });

  async function serve(delayMs: number, onRequest: (count: number) => void = () => {}) {
    let count = 0;
    const server = http.createServer((_req, res) => {
      onRequest(++count);
      setTimeout(() => res.end("ok"), delayMs);
    });
    server.keepAliveTimeout = 60_000;
    servers.push(server);
    const drainer = createDrainer(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return { server, drainer, port: (server.address() as AddressInfo).port };
  }

  it("closes busy keep-alive connections after their current response; every accepted request is answered", async () => {
    // The drain starts while the 20th request is being served (its headers not out yet), so at least that response
    // must carry Connection: close. (Started from a timer instead, the drain could land in a moment when all four
    // connections sit between two requests — then they are all idle, closed at once, and none is told to close.)
    let startDrain: () => void = () => {};
    const drainStarted = new Promise<void>((resolve) => {
      startDrain = resolve;
    });
    const { drainer, port } = await serve(20, (count) => {
      if (count === 20) {
        startDrain();
      }
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const results: { status: number; body: string; connection: string | undefined }[] = [];
    const errors: string[] = [];
    let running = true;
    const get = () =>
      new Promise<void>((resolve) => {
        const req = http.get({ host: "127.0.0.1", port, agent, path: "/" }, (res) => {
          let body = "";
          res.on("data", (chunk: Buffer) => {
            body += chunk.toString();
          });
          res.on("end", () => {
            results.push({ status: res.statusCode ?? 0, body, connection: res.headers.connection });
            resolve();
          });
        });
        req.on("error", (error: NodeJS.ErrnoException) => {
          errors.push(error.code ?? error.message);
          resolve();
        });
      });
    // Four clients, each sending its next request as soon as the last one is answered, for at most 15 s.
    const clientsDone = Promise.all(
      Array.from({ length: 4 }, async () => {
        const until = Date.now() + 15_000;
        while (running && Date.now() < until) {
          await get();
        }
      }),
    );
    await drainStarted;
    let drained = false;
    // Without the Connection: close rule the server never closes while the clients are busy (only their 15 s end
    // would let it), and the 30 s limit below would be what ends the drain.
    const drain = drainer
      .drain(30_000, () => errors.push("drain timed out"))
      .then(() => {
        drained = true;
      });
    await Promise.race([drain, clientsDone]);
    expect(drained, JSON.stringify({ errors, results: results.length })).toBe(true);
    running = false;
    await clientsDone;
    agent.destroy();
    expect(errors.filter((error) => error === "drain timed out")).toEqual([]);
    // Every request that reached the server got its full answer; the ones after the close were refused.
    expect(results.every((result) => result.status === 200 && result.body === "ok")).toBe(true);
    expect(
      results.some((result) => result.connection === "close"),
      JSON.stringify({ errors, tail: results.slice(-6) }),
    ).toBe(true);
    // Refused after the close; or the usual keep-alive race: a request sent on a socket just as the server closed
    // it between two responses (never one the server had accepted: those all got answers above).
    expect(
      errors.filter((error) => !["ECONNREFUSED", "ECONNRESET", "EPIPE"].includes(error)),
      JSON.stringify(errors),
    ).toEqual([]);
    expect(drainer.inFlight).toBe(0);
  });

  it("cuts what is still running when the limit passes", async () => {
    const { drainer, port } = await serve(60_000);
    const pending = new Promise<string>((resolve) => {
      http
        .get({ host: "127.0.0.1", port, path: "/" }, () => resolve("answered"))
        .on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    });
    await vi.waitUntil(() => drainer.inFlight > 0, { timeout: 10_000, interval: 10 });
    let aborted = false;
    await drainer.drain(200, () => {
      aborted = true;
    });
    expect(aborted).toBe(true);
    expect(await pending).toBe("ECONNRESET");
  });
});
