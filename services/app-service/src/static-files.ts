import { existsSync, statSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import type http from "node:http";
import path from "node:path";
import { ConfigError } from "@shadowmesh/common";

/**
 * Serves the built web app (Vite's `web/dist`) in local mode.
 *
 * Cache headers follow what Vite produces: files under `assets/` carry a content hash in their name, so they are
 * cached for a year and marked immutable; everything else (index.html above all) is `no-cache` with an ETag, so a
 * new build is picked up at the next load while unchanged files cost a 304.
 */

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
  ".webmanifest": "application/manifest+json",
};

/**
 * The Content-Security-Policy of the web app: everything from our own origin, nothing inline, no frames.
 * Solid sets dynamic styles through the CSSOM (element.style), which `style-src 'self'` allows.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export type StaticHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Creates the handler for `webDir`; throws a ConfigError at start when the directory holds no index.html. */
export function createStaticHandler(webDir: string): StaticHandler {
  const root = path.resolve(webDir);
  const index = path.join(root, "index.html");
  if (!existsSync(index) || !statSync(index).isFile()) {
    throw new ConfigError(
      `invalid configuration: APP_SERVICE_WEB_DIR=${webDir} has no index.html (run \`npm run build -w web\`, or set it empty)`,
    );
  }

  const send = (res: http.ServerResponse, status: number, body: string) => {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
    res.end(body);
  };

  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      send(res, 405, "method not allowed\n");
      return;
    }
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
    } catch {
      send(res, 400, "bad request\n");
      return;
    }
    const file = pathname === "/" ? index : path.join(root, path.normalize(pathname));
    // path.join normalises "..": anything that ends up outside the web directory is not ours to serve.
    if (file !== root && !file.startsWith(root + path.sep)) {
      send(res, 404, "not found\n");
      return;
    }
    void serveFile(file, root, req, res).catch(() => send(res, 404, "not found\n"));
  };
}

async function serveFile(file: string, root: string, req: http.IncomingMessage, res: http.ServerResponse) {
  const info = await stat(file);
  if (!info.isFile()) {
    throw new Error("not a file");
  }
  const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const relative = path.relative(root, file);
  const hashed = relative.startsWith(`assets${path.sep}`);
  const type = TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream";
  res.setHeader("content-type", type);
  res.setHeader("cache-control", hashed ? "public, max-age=31536000, immutable" : "no-cache");
  res.setHeader("etag", etag);
  if (type.startsWith("text/html")) {
    res.setHeader("content-security-policy", CONTENT_SECURITY_POLICY);
  }
  if (req.headers["if-none-match"] === etag) {
    res.writeHead(304);
    res.end();
    return;
  }
  const body = await readFile(file);
  res.setHeader("content-length", body.length);
  res.writeHead(200);
  res.end(req.method === "HEAD" ? undefined : body);
}
