import { type Code, ConnectError } from "@connectrpc/connect";

/** How a call ended: "ok", or the connect `Code` it failed with. */
export async function codeOf(promise: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}
