import type http from "node:http";
import { type Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { REQUEST_ID_HEADER } from "@shadowmesh/common";

/**
 * The rules at the web edge, applied to every request on the public port before the RPC router sees it
 * (README "The web edge"):
 *
 * 1. **Host.** The Host header must name this service: one of APP_SERVICE_PUBLIC_HOSTS, or by default a loopback
 *    name (localhost, 127.0.0.1, [::1]) on the port the connection arrived on. Anything else is answered 421
 *    Misdirected Request: a DNS-rebinding page (evil.example resolving to 127.0.0.1) reaches the port but names
 *    its own host, so it is refused before anything runs — static files included.
 * 2. **Origin.** An API call (a path of the form /package.Service/Method) from a browser page of another origin is
 *    refused with 403 whatever the HTTP method, unless the origin is on the CORS allowlist. The page's origin is the
 *    Origin header; "same origin" means same scheme, host and port as this request (scheme from
 *    X-Forwarded-Proto only when APP_SERVICE_TRUST_FORWARDED_PROTO says a TLS-terminating proxy sets it). Browsers
 *    omit Origin on simple GETs (an `<img src>`, a link, a `<script>`), so without Origin the fetch metadata decide:
 *    `Sec-Fetch-Site: cross-site` or `same-site` (another origin of the same site) is refused; `same-origin` and
 *    `none` (the user typed the address) pass, and so do clients that send neither header (curl, buf curl, SDKs).
 * 3. **No writes over GET.** Predict and PredictBatch store prediction records (the comparison's data), so they are
 *    served over POST only, although their contract marks them NO_SIDE_EFFECTS (which makes Istio mirror them and
 *    lets Connect clients use GET): a browser that predates fetch metadata would otherwise let any page write
 *    records through a cross-site `<img src>`. GetModel, GetShadowReport and ListCandidates stay available over GET.
 */

/** A path naming an RPC: `/package.Service/Method`. */
export const RPC_PATH = /^\/[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+\/[A-Za-z_][\w]*$/;

/** RPCs that write (prediction records) and are therefore refused over GET. */
export const POST_ONLY = new Set([
  "/shadowmesh.predict.v1.PredictService/Predict",
  "/shadowmesh.predict.v1.PredictService/PredictBatch",
]);

export interface EdgeOptions {
  /** Lower-case `host` or `host:port` entries; empty = loopback names on the listening port. */
  publicHosts: readonly string[];
  /** Take the scheme from X-Forwarded-Proto (a trusted TLS-terminating proxy sets it). */
  trustForwardedProto: boolean;
  /** Origins allowed to call the API cross-origin. */
  corsOrigins: ReadonlySet<string>;
}

/** The pathname of a request URL, without the query. */
export function pathOf(req: http.IncomingMessage): string {
  const url = req.url ?? "/";
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}

const LOOPBACK = ["localhost", "127.0.0.1", "[::1]"];

/** Splits a Host header into a lower-case host name and a port ("" when absent). */
function splitHost(value: string): { name: string; port: string } {
  const lower = value.trim().toLowerCase();
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(lower);
  if (!match) {
    return { name: lower, port: "" };
  }
  return { name: match[1] ?? "", port: match[2] ?? "" };
}

/** Whether the Host header names this service; `localPort` is the port the connection arrived on. */
export function hostAllowed(
  hostHeader: string | undefined,
  publicHosts: readonly string[],
  localPort: number | undefined,
): boolean {
  if (!hostHeader) {
    return false;
  }
  const { name, port } = splitHost(hostHeader);
  if (name === "") {
    return false;
  }
  if (publicHosts.length === 0) {
    // Loopback names on the listening port only (a Host without a port means port 80).
    return LOOPBACK.includes(name) && (port === "" ? 80 : Number(port)) === localPort;
  }
  return publicHosts.some((entry) => {
    const allowed = splitHost(entry);
    return allowed.name === name && (allowed.port === "" || allowed.port === port);
  });
}

/** This request's own origin, scheme://host[:port] as a browser would write it. */
export function ownOrigin(req: http.IncomingMessage, trustForwardedProto: boolean): string | undefined {
  let scheme = "http";
  if (trustForwardedProto) {
    const forwarded = req.headers["x-forwarded-proto"];
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(",")[0]?.trim().toLowerCase();
    if (first === "https" || first === "http") {
      scheme = first;
    }
  }
  try {
    return new URL(`${scheme}://${req.headers.host ?? ""}`).origin;
  } catch {
    return undefined;
  }
}

/** A browser-supplied Origin, normalised (default ports dropped); undefined for "null" or garbage. */
function normalisedOrigin(origin: string): string | undefined {
  try {
    const url = new URL(origin);
    return url.origin === "null" ? undefined : url.origin;
  } catch {
    return undefined;
  }
}

export type OriginDecision =
  | { kind: "same-origin" }
  | { kind: "allowed"; origin: string }
  | { kind: "refused"; reason: string };

/** Decides whether a browser call to the API may proceed (see the rules above). */
export function originDecision(req: http.IncomingMessage, options: EdgeOptions): OriginDecision {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const own = ownOrigin(req, options.trustForwardedProto);
    const given = normalisedOrigin(origin);
    if (given !== undefined && given === own) {
      return { kind: "same-origin" };
    }
    if (options.corsOrigins.has(origin) || (given !== undefined && options.corsOrigins.has(given))) {
      return { kind: "allowed", origin };
    }
    return {
      kind: "refused",
      reason: `calls from origin ${origin} are not allowed (this is ${own ?? "another origin"}; add it to APP_SERVICE_CORS_ORIGINS to allow it)`,
    };
  }
  const site = req.headers["sec-fetch-site"];
  if (site === "cross-site" || site === "same-site") {
    return {
      kind: "refused",
      reason: `calls from another site are not allowed (Sec-Fetch-Site: ${site}, no Origin)`,
    };
  }
  return { kind: "same-origin" };
}

type RpcProtocol = "connect" | "grpc-web" | "grpc";

function protocolOf(req: http.IncomingMessage): RpcProtocol {
  const type = (req.headers["content-type"] ?? "").toLowerCase();
  if (type.startsWith("application/grpc-web")) {
    return "grpc-web";
  }
  if (type.startsWith("application/grpc")) {
    return "grpc";
  }
  return "connect";
}

/**
 * Answers a call that never reaches the RPC router with an error the caller's protocol understands: a Connect
 * JSON error body (HTTP status from the code, or `httpStatus`), or a gRPC-web / gRPC trailers-only response
 * (HTTP 200, grpc-status in the headers). `x-request-id` is sent too.
 */
export function writeRpcError(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  code: Code,
  message: string,
  requestId: string,
  extraHeaders: Record<string, string> = {},
  httpStatus?: number,
): void {
  const headers: Record<string, string> = { [REQUEST_ID_HEADER]: requestId, ...extraHeaders };
  const protocol = protocolOf(req);
  if (protocol === "connect") {
    const body = errorToJsonBytes(new ConnectError(message, code), {});
    res.writeHead(httpStatus ?? codeToHttpStatus(code), {
      ...headers,
      "content-type": "application/json",
      "content-length": String(body.byteLength),
    });
    res.end(body);
    req.resume();
    return;
  }
  res.writeHead(200, {
    ...headers,
    "content-type": protocol === "grpc-web" ? "application/grpc-web+proto" : "application/grpc+proto",
    "grpc-status": String(code),
    "grpc-message": encodeURIComponent(message),
  });
  res.end();
  req.resume();
}

/** Plain-text refusal for requests that are not RPCs (the web app's files). */
export function writeText(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
  res.end(body.endsWith("\n") ? body : `${body}\n`);
}
