import type http from "node:http";
import { type DescMessage, fromBinary, fromJsonString } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { Code, ConnectError, type ConnectRouterOptions, createConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";

/**
 * The internal header through which the router tells the request interceptor that the request message could not
 * be parsed (its value is the reason). The edge removes any copy a client sends.
 */
export const MALFORMED_HEADER = "x-shadowmesh-malformed";

export interface RpcHandler {
  /** The request paths (`/package.Service/Method`) served. */
  readonly paths: ReadonlySet<string>;
  /** Serves one request whose path is in `paths`. */
  handle(req: http.IncomingMessage, res: http.ServerResponse): void;
}

type BodyKind = "unary-binary" | "unary-json" | "enveloped-binary" | "enveloped-json";

function bodyKind(contentType: string | null): BodyKind | undefined {
  const type = (contentType ?? "").toLowerCase().split(";")[0]?.trim() ?? "";
  switch (type) {
    case "application/proto":
      return "unary-binary";
    case "application/json":
      return "unary-json";
    case "application/connect+proto":
    case "application/grpc-web":
    case "application/grpc-web+proto":
    case "application/grpc":
    case "application/grpc+proto":
      return "enveloped-binary";
    case "application/connect+json":
    case "application/grpc-web+json":
    case "application/grpc+json":
      return "enveloped-json";
    default:
      return undefined;
  }
}

async function* replay(head: Uint8Array[], rest: AsyncIterator<Uint8Array> | undefined) {
  yield* head;
  if (rest) {
    for (let next = await rest.next(); !next.done; next = await rest.next()) {
      yield next.value;
    }
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

function parseProblem(input: DescMessage, bytes: Uint8Array, json: boolean): string | undefined {
  try {
    if (json) {
      // As connect-es parses JSON: unknown fields are ignored.
      fromJsonString(input, new TextDecoder("utf-8", { fatal: true }).decode(bytes), {
        ignoreUnknownFields: true,
      });
    } else {
      fromBinary(input, bytes);
    }
    return undefined;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return `the request message is not a valid ${input.typeName} (${json ? "JSON" : "protobuf binary"}): ${reason}`;
  }
}

/**
 * Reads a request's message before connect-es does, so that a malformed one is answered INVALID_ARGUMENT by the
 * request interceptor — with the request id, counted like every call — instead of connect-es's INTERNAL
 * ("parse binary: …", raised before interceptors run). Only uncompressed POST bodies of one message are checked
 * (every method served here takes one request message); anything else (GET, compressed, an incomplete envelope,
 * a body over the limit) is replayed untouched and left to connect-es, which answers those correctly. The body is
 * replaced by an empty message when it is malformed, so connect-es's own parser never sees it.
 */
async function checked(
  uReq: UniversalServerRequest,
  input: DescMessage,
  readMaxBytes: number,
): Promise<UniversalServerRequest> {
  uReq.header.delete(MALFORMED_HEADER);
  const kind = bodyKind(uReq.header.get("content-type"));
  const body = uReq.body;
  if (uReq.method !== "POST" || kind === undefined || body === null || typeof body !== "object") {
    return uReq;
  }
  if (!(Symbol.asyncIterator in body)) {
    return uReq;
  }
  const unary = kind.startsWith("unary");
  // Compressed unary bodies are left to connect-es (a compressed envelope has its flag set, checked below).
  if (unary && (uReq.header.get("content-encoding") ?? "identity") !== "identity") {
    return uReq;
  }
  const iterator = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const limit = readMaxBytes + 5;
  let rest: AsyncIterator<Uint8Array> | undefined;
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    chunks.push(next.value);
    total += next.value.byteLength;
    if (total > limit) {
      // Too big to be ours to check: connect-es refuses it with RESOURCE_EXHAUSTED.
      rest = iterator;
      break;
    }
  }
  const untouched = { ...uReq, body: replay(chunks, rest) };
  if (rest) {
    return untouched;
  }
  const bytes = concat(chunks, total);
  let message = bytes;
  if (!unary) {
    if (bytes.byteLength < 5) {
      return untouched;
    }
    const flags = bytes[0] ?? 0;
    const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(1);
    if ((flags & 0x01) !== 0 || bytes.byteLength !== 5 + length) {
      return untouched;
    }
    message = bytes.subarray(5);
  }
  if (message.byteLength > readMaxBytes) {
    return untouched;
  }
  const problem = parseProblem(input, message, kind.endsWith("json"));
  if (problem === undefined) {
    return untouched;
  }
  uReq.header.set(MALFORMED_HEADER, problem.replace(/[^\x20-\x7e]+/g, "?").slice(0, 500));
  const empty = kind.endsWith("json") ? new TextEncoder().encode("{}") : new Uint8Array(0);
  const replacement = unary
    ? empty
    : concat([new Uint8Array([0, 0, 0, 0, empty.byteLength]), empty], 5 + empty.byteLength);
  // connect-es compares the body with Content-Length.
  uReq.header.set("content-length", String(replacement.byteLength));
  return { ...uReq, body: replay([replacement], undefined) };
}

export interface RpcHandlerOptions extends ConnectRouterOptions {
  routes: (router: ConnectRouter) => void;
  readMaxBytes: number;
}

/**
 * What connect-node's `connectNodeAdapter` does — a ConnectRouter's handlers served on node:http — with two
 * differences: the paths served are known to the edge (unknown RPC paths are answered UNIMPLEMENTED there), and
 * request messages are checked first (see `checked`).
 */
export function createRpcHandler(options: RpcHandlerOptions): RpcHandler {
  const router = createConnectRouter({
    acceptCompression: [compressionGzip, compressionBrotli],
    ...options,
  });
  options.routes(router);
  const handlers = new Map<string, UniversalHandler>();
  for (const uHandler of router.handlers) {
    handlers.set(uHandler.requestPath, uHandler);
  }
  return {
    paths: new Set(handlers.keys()),
    handle(req, res) {
      const path = (req.url ?? "").split("?", 1)[0] ?? "";
      const uHandler = handlers.get(path);
      if (!uHandler) {
        throw new Error(`no handler for ${path}`);
      }
      const uReq = universalRequestFromNodeRequest(req, res, undefined, undefined);
      checked(uReq, uHandler.method.input, options.readMaxBytes)
        .then((request) => uHandler(request))
        .then((uRes) => universalResponseToNodeResponse(uRes, res))
        .catch((reason: unknown) => {
          if (ConnectError.from(reason).code === Code.Aborted) {
            return;
          }
          if (!res.headersSent) {
            res.writeHead(500);
          }
          res.end();
        });
    },
  };
}
