import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type FakeServer, startFakeModelService } from "./testing/fakes.js";
import { type RunningApp, startApp } from "./testing/harness.js";

/** The HTTP surface: limits, CORS, security headers and the web app's static files. */

let primary: FakeServer;
let running: RunningApp | undefined;
let webDir: string;

beforeAll(async () => {
  primary = await startFakeModelService();
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
  await primary.close();
  rmSync(webDir, { recursive: true, force: true });
});

afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function start(env: Record<string, string> = {}) {
  running = await startApp({ MODEL_SERVICE_ADDRESS: primary.address, WEB_DIR: webDir, ...env });
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

describe("the HTTP surface", () => {
  it("answers a plain Connect JSON POST, as curl would send it", async () => {
    const baseUrl = await start();
    const response = await post(baseUrl, JSON.stringify({ text: "win free cash" }));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { prediction: { label: string; requestId: string } };
    expect(body.prediction.label).toBe("spam");
    expect(body.prediction.requestId).toBe(response.headers.get("x-request-id"));
  });

  it("answers a Connect GET for the side-effect-free Predict", async () => {
    const baseUrl = await start();
    const message = encodeURIComponent(JSON.stringify({ text: "hello there" }));
    const response = await fetch(`${baseUrl}${predictPath}?encoding=json&message=${message}`);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { prediction: { label: string } }).prediction.label).toBe("ham");
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
