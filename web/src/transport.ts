import type { Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

/**
 * The one transport of the app: the Connect protocol (JSON, so requests are readable in the browser's dev tools) to
 * the origin that served the page — app-service serves both the web app and the API, so no CORS is involved.
 */
export function createAppTransport(baseUrl: string = window.location.origin): Transport {
  return createConnectTransport({ baseUrl });
}
