/**
 * Listening on a configured port, with one readable line when that is impossible. A port in use (or a port the
 * process may not bind, or a host that is not on this machine) is the most common start-up failure of all; every
 * service reports it the same way, naming the port, the setting that chose it and the host, and exits 1 without a
 * stack trace:
 *
 *     model-service: port 50051 (MODEL_SERVICE_GRPC_PORT) on 127.0.0.1 is in use
 */

import type { AddressInfo, Server } from "node:net";

/** The port a service tries to listen on and the setting that chose it. */
export interface ListenTarget {
  /** The full setting name, e.g. `MODEL_SERVICE_GRPC_PORT`. */
  setting: string;
  host: string;
  port: number;
}

/** A port that cannot be listened on; the message is one readable line. */
export class ListenError extends Error {
  override name = "ListenError";
  constructor(
    readonly target: ListenTarget,
    /** The system error code when there is one (EADDRINUSE, EACCES, EADDRNOTAVAIL …). */
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

const KNOWN_CODES = ["EADDRINUSE", "EACCES", "EADDRNOTAVAIL"] as const;

/**
 * The system error code of a failed listen: `error.code` for Node's net errors; grpc-js drops the code but keeps
 * it in the message ("… errors: [listen EADDRINUSE: address already in use 127.0.0.1:50051]").
 */
export function listenErrorCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string") {
    return code;
  }
  const message = error instanceof Error ? error.message : String(error);
  return KNOWN_CODES.find((known) => message.includes(known));
}

/** Listens with a Node HTTP (or net) server; rejects with the listen error (EADDRINUSE …) instead of emitting it. */
export function listenHttp(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** The one line that says why `target` cannot be listened on. */
export function listenProblem(target: ListenTarget, error: unknown): string {
  const { setting, host, port } = target;
  const code = listenErrorCode(error);
  switch (code) {
    case "EADDRINUSE":
      return `port ${port} (${setting}) on ${host} is in use`;
    case "EACCES":
      return `port ${port} (${setting}) on ${host}: permission denied (ports below 1024 need privileges)`;
    case "EADDRNOTAVAIL":
      return `cannot listen on ${host} (port ${port}, ${setting}): the address is not on this machine`;
    default: {
      const message = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, " ").trim();
      return `cannot listen on port ${port} (${setting}) on ${host}: ${message}`;
    }
  }
}

/** Runs `listen`; a failure becomes a ListenError with the one-line message for `target`. */
export async function listenOn<T>(target: ListenTarget, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (error) {
    if (error instanceof ListenError) {
      throw error;
    }
    throw new ListenError(target, listenErrorCode(error), listenProblem(target, error));
  }
}

/**
 * For main.ts: runs `listen`; when it fails, prints `<service>: <the one line>` on stderr and exits 1 (no stack
 * trace, nothing else on stderr).
 */
export async function listenOrExit<T>(
  service: string,
  target: ListenTarget,
  listen: () => Promise<T>,
): Promise<T> {
  try {
    return await listenOn(target, listen);
  } catch (error) {
    console.error(`${service}: ${(error as ListenError).message}`);
    process.exit(1);
  }
}
