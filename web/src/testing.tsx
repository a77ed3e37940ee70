import {
  type ConnectRouter,
  createRouterTransport,
  type ServiceImpl,
  type Transport,
} from "@connectrpc/connect";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import type { JSX } from "solid-js";
import { ClientsProvider } from "./clients";

/** Test helpers: the views get an in-memory Connect transport with whatever implementations a test gives. */
export interface FakeApi {
  predict?: Partial<ServiceImpl<typeof PredictService>>;
  metrics?: Partial<ServiceImpl<typeof MetricsService>>;
}

export function fakeTransport(api: FakeApi): Transport {
  return createRouterTransport((router: ConnectRouter) => {
    router.service(PredictService, api.predict ?? {});
    router.service(MetricsService, api.metrics ?? {});
  });
}

/** A view rendered inside a ClientsProvider with the fake API: `render(withApi(api, () => <Page />))`. */
export function withApi(api: FakeApi, view: () => JSX.Element) {
  const transport = fakeTransport(api);
  return () => <ClientsProvider transport={transport}>{view()}</ClientsProvider>;
}

/** The same as a `wrapper` for renderHook: `renderHook(() => useX(), { wrapper: apiWrapper(api) })`. */
export function apiWrapper(api: FakeApi) {
  const transport = fakeTransport(api);
  return (props: { children: JSX.Element }) => (
    <ClientsProvider transport={transport}>{props.children}</ClientsProvider>
  );
}
