import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FakeNetwork, fakeModelService } from "./testing/fakes.js";
import { type RunningApp, startApp } from "./testing/harness.js";

/** The HTTP surface: limits, CORS, security headers and the web app's static files. */

const network = new FakeNetwork();
const primary = fakeModelService();
let primaryAddress: string;
let running: RunningApp | undefined;
let webDir: string;

beforeAll(async () => {
  primaryAddress = network.add(primary, "primary");
  webDir = mkdtempSync(path.join(tmpdir(), "app-service-web-"));
  mkdirSync(path.join(webDir, "assets"));
  writeFileSync(
    path.join(webDir, "index.html"),
    '<!doctype html><script type="module" src="/assets/index-AbC123.js"></script>',
  );
  writeFileSync(path.join(webDir, "assets", "index-AbC123.js"), "console.log('hi');");
  writeFileSync(path.join(webDir, "favicon.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>");
});

afterAll(async () => {
  rmSync(webDir, { recursive: true, force: true });
});

afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function start(env: Record<string, string> = {}) {
  running = await startApp({ MODEL_SERVICE_ADDRESS: primaryAddress, WEB_DIR: webDir, ...env }, network);
  return running.baseUrl;
}

const predictPath = "/shadowmesh.predict.v1.PredictService/Predict";

function post(baseUrl: string, body: string, headers: Record<string, string> = {}) {
  return fetch(`${baseUrl}${predictPath}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

/** A raw HTTP/1.1 request, so that Host and fetch-metadata headers are exactly what a test says. */
function raw(
  baseUrl: string,
  options: { method?: string; path?: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(options.path ?? predictPath, baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: options.method ?? "POST", headers: options.headers ?? {}, setHost: false },
      (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

describe("the HTTP surface", () => {
  it("answers a plain Connect JSON POST, as curl would send it", async () => {
    const baseUrl = await start();
    const response = await post(baseUrl, JSON.stringify({ text: "win free cash" }));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { prediction: { label: string; requestId: string } };
    expect(body.prediction.label).toBe("spam");
    expect(body.prediction.requestId).toBe(response.headers.get("x-request-id"));
  });

  it("serves Predict over POST only (it writes records) and the read-only GetModel over GET too", async () => {
    const baseUrl = await start();
    const message = encodeURIComponent(JSON.stringify({ text: "hello there" }));
    const predictGet = await fetch(`${baseUrl}${predictPath}?encoding=json&message=${message}`);
    expect(predictGet.status).toBe(405);
    expect(predictGet.headers.get("allow")).toBe("POST");
    expect(((await predictGet.json()) as { code: string }).code).toBe("unimplemented");
    const batchMessage = encodeURIComponent(JSON.stringify({ texts: ["a"] }));
    const batchGet = await fetch(
      `${baseUrl}/shadowmesh.predict.v1.PredictService/PredictBatch?encoding=json&message=${batchMessage}`,
    );
    expect(batchGet.status).toBe(405);
    const before = primary.calls.length;
    const modelGet = await fetch(
      `${baseUrl}/shadowmesh.predict.v1.PredictService/GetModel?encoding=json&message=${encodeURIComponent("{}")}`,
    );
    expect(modelGet.status).toBe(200);
    expect(primary.calls.slice(before).map((call) => call.method)).toEqual(["GetModel"]);
  });

  it("refuses a request message over the body limit with RESOURCE_EXHAUSTED", async () => {
    const baseUrl = await start({ MAX_BODY_BYTES: "1024" });
    const response = await post(baseUrl, JSON.stringify({ text: "x".repeat(5000) }));
    const body = (await response.json()) as { code: string };
    expect(body.code).toBe("resource_exhausted");
    expect(
      primary.calls.filter((call) => (call.request as { text?: string }).text?.length === 5000),
    ).toHaveLength(0);
  });

  it("sends security headers and no x-powered-by", async () => {
    const baseUrl = await start();
    for (const response of [
      await fetch(`${baseUrl}/`),
      await post(baseUrl, JSON.stringify({ text: "hi" })),
    ]) {
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("x-frame-options")).toBe("DENY");
      expect(response.headers.get("x-powered-by")).toBeNull();
    }
  });

  it("refuses cross-origin calls by default and serves same-origin ones", async () => {
    const baseUrl = await start();
    const preflight = await fetch(`${baseUrl}${predictPath}`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    expect(preflight.status).toBe(403);
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    const crossPost = await post(baseUrl, JSON.stringify({ text: "hi" }), { origin: "https://evil.example" });
    expect(crossPost.status).toBe(403);
    const sameOrigin = await post(baseUrl, JSON.stringify({ text: "hi" }), { origin: baseUrl });
    expect(sameOrigin.status).toBe(200);
    expect(sameOrigin.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("allows the origins on the CORS allowlist, with the headers Connect needs", async () => {
    const baseUrl = await start({ CORS_ORIGINS: "http://localhost:5173, https://app.example" });
    const preflight = await fetch(`${baseUrl}${predictPath}`, {
      method: "OPTIONS",
      headers: {
        origin: "http://localhost:5173",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,connect-protocol-version,x-request-id",
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/connect-protocol-version/i);
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/x-request-id/);
    const call = await post(baseUrl, JSON.stringify({ text: "hi" }), { origin: "https://app.example" });
    expect(call.status).toBe(200);
    expect(call.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(call.headers.get("access-control-expose-headers")).toMatch(/x-request-id/);
  });

  it("serves index.html with no-cache and a CSP, and hashed assets as immutable", async () => {
    const baseUrl = await start();
    const index = await fetch(`${baseUrl}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(index.headers.get("cache-control")).toBe("no-cache");
    expect(index.headers.get("content-security-policy")).toMatch(/default-src 'self'.*script-src 'self'/);
    expect(index.headers.get("content-security-policy")).not.toMatch(/unsafe-inline|unsafe-eval/);
    expect(await index.text()).toContain("index-AbC123.js");
    const asset = await fetch(`${baseUrl}/assets/index-AbC123.js`);
    expect(asset.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(asset.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
    const icon = await fetch(`${baseUrl}/favicon.svg`);
    expect(icon.headers.get("cache-control")).toBe("no-cache");
  });

  it("answers 304 to a revalidation with the current ETag", async () => {
    const baseUrl = await start();
    const first = await fetch(`${baseUrl}/`);
    const etag = first.headers.get("etag") ?? "";
    expect(etag).not.toBe("");
    const second = await fetch(`${baseUrl}/`, { headers: { "if-none-match": etag } });
    expect(second.status).toBe(304);
  });

  it("serves nothing outside the web directory and 404s unknown paths", async () => {
    const baseUrl = await start();
    for (const probe of [
      "/../package.json",
      "/%2e%2e/%2e%2e/etc/passwd",
      "/assets/../../etc/passwd",
      "/nope.js",
    ]) {
      const response = await fetch(`${baseUrl}${probe}`);
      expect(response.status).toBe(404);
    }
  });

  it("answers 404 for everything but the API when no web directory is configured", async () => {
    const baseUrl = await start({ WEB_DIR: "" });
    expect((await fetch(`${baseUrl}/`)).status).toBe(404);
    expect((await post(baseUrl, JSON.stringify({ text: "hi" }))).status).toBe(200);
  });
});

describe("the web edge: origins", () => {
  const json = { "content-type": "application/json" };
  const body = JSON.stringify({ text: "win free cash" });

  it("refuses API calls from another origin whatever the method, before anything is forwarded", async () => {
    const baseUrl = await start();
    const host = new URL(baseUrl).host;
    const before = primary.calls.length;
    const message = encodeURIComponent(JSON.stringify({}));
    for (const request of [
      { method: "POST", headers: { ...json, host, origin: "https://evil.example" }, body },
      {
        method: "GET",
        path: `/shadowmesh.predict.v1.PredictService/GetModel?encoding=json&message=${message}`,
        headers: { host, origin: "https://evil.example" },
      },
      {
        method: "GET",
        path: `/shadowmesh.metrics.v1.MetricsService/GetShadowReport?encoding=json&message=${message}`,
        headers: { host, origin: "null" },
      },
    ]) {
      const response = await raw(baseUrl, request);
      expect(response.status).toBe(403);
      expect(response.headers["access-control-allow-origin"]).toBeUndefined();
      expect(JSON.parse(response.body)).toMatchObject({ code: "permission_denied" });
      expect(response.body).toMatch(/not allowed/);
    }
    expect(primary.calls.length).toBe(before);
  });

  it("refuses cross-site requests without an Origin header (an <img src>, a link) by their fetch metadata", async () => {
    const baseUrl = await start();
    const host = new URL(baseUrl).host;
    const before = primary.calls.length;
    const message = encodeURIComponent(JSON.stringify({}));
    const getModel = `/shadowmesh.predict.v1.PredictService/GetModel?encoding=json&message=${message}`;
    for (const site of ["cross-site", "same-site"]) {
      const get = await raw(baseUrl, {
        method: "GET",
        path: getModel,
        headers: { host, "sec-fetch-site": site },
      });
      expect(get.status).toBe(403);
      const post = await raw(baseUrl, { headers: { ...json, host, "sec-fetch-site": site }, body });
      expect(post.status).toBe(403);
    }
    expect(primary.calls.length).toBe(before);
    // The same page's own calls, an address typed by the user, and clients without fetch metadata (curl) pass.
    for (const site of ["same-origin", "none"]) {
      const get = await raw(baseUrl, {
        method: "GET",
        path: getModel,
        headers: { host, "sec-fetch-site": site },
      });
      expect(get.status).toBe(200);
    }
    expect((await raw(baseUrl, { headers: { ...json, host }, body })).status).toBe(200);
  });

  it("compares the scheme too: an https page is another origin than this http server", async () => {
    const baseUrl = await start();
    const host = new URL(baseUrl).host;
    const https = await raw(baseUrl, { headers: { ...json, host, origin: `https://${host}` }, body });
    expect(https.status).toBe(403);
    // X-Forwarded-Proto is ignored unless a trusted proxy is configured…
    const forged = await raw(baseUrl, {
      headers: { ...json, host, origin: `https://${host}`, "x-forwarded-proto": "https" },
      body,
    });
    expect(forged.status).toBe(403);
    const http = await raw(baseUrl, { headers: { ...json, host, origin: `http://${host}` }, body });
    expect(http.status).toBe(200);
  });

  it("takes the scheme from X-Forwarded-Proto behind a trusted TLS-terminating proxy", async () => {
    const baseUrl = await start({ TRUST_FORWARDED_PROTO: "true" });
    const host = new URL(baseUrl).host;
    const viaProxy = await raw(baseUrl, {
      headers: { ...json, host, origin: `https://${host}`, "x-forwarded-proto": "https" },
      body,
    });
    expect(viaProxy.status).toBe(200);
    const downgraded = await raw(baseUrl, {
      headers: { ...json, host, origin: `http://${host}`, "x-forwarded-proto": "https" },
      body,
    });
    expect(downgraded.status).toBe(403);
  });
});

describe("the web edge: Host", () => {
  it("refuses a Host that is not this server's (DNS rebinding), for the API and the web app alike", async () => {
    const baseUrl = await start();
    const { port } = new URL(baseUrl);
    const before = primary.calls.length;
    // A page on evil.example whose name was re-pointed to 127.0.0.1: same origin as far as the browser can tell.
    for (const host of [
      `evil.example:${port}`,
      "evil.example",
      `127.0.0.1:${Number(port) + 1}`,
      "127.0.0.1",
    ]) {
      const api = await raw(baseUrl, {
        headers: { "content-type": "application/json", host, origin: `http://${host}` },
        body: JSON.stringify({ text: "hi" }),
      });
      expect(api.status).toBe(421);
      expect(api.body).toMatch(/does not answer to host/);
      const page = await raw(baseUrl, { method: "GET", path: "/", headers: { host } });
      expect(page.status).toBe(421);
      expect(page.body).toMatch(/APP_SERVICE_PUBLIC_HOSTS/);
    }
    // HTTP/1.1 without a Host header: node:http itself refuses it (400) before app-service sees it.
    const noHost = await raw(baseUrl, { method: "GET", path: "/", headers: {} });
    expect(noHost.status).toBe(400);
    expect(primary.calls.length).toBe(before);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      const page = await raw(baseUrl, { method: "GET", path: "/", headers: { host } });
      expect(page.status).toBe(200);
    }
  });

  it("answers only the configured public hosts when APP_SERVICE_PUBLIC_HOSTS is set", async () => {
    const baseUrl = await start({ PUBLIC_HOSTS: "shadowmesh.example.com,app-service:8080" });
    const { port } = new URL(baseUrl);
    const status = async (host: string) =>
      (await raw(baseUrl, { method: "GET", path: "/", headers: { host } })).status;
    expect(await status("shadowmesh.example.com")).toBe(200);
    expect(await status("Shadowmesh.Example.com:443")).toBe(200);
    expect(await status("app-service:8080")).toBe(200);
    expect(await status("app-service:9090")).toBe(421);
    expect(await status(`127.0.0.1:${port}`)).toBe(421);
    expect(await status("evil.example")).toBe(421);
  });
});
