import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { MetricsService } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { PredictService } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { createContext, type JSX, useContext } from "solid-js";

/** The RPC clients the views use. Views never build transports: main.tsx provides the real one, tests an in-memory one. */
export interface Clients {
  predict: Client<typeof PredictService>;
  metrics: Client<typeof MetricsService>;
}

const ClientsContext = createContext<Clients>();

export function ClientsProvider(props: { transport: Transport; children: JSX.Element }) {
  const clients: Clients = {
    predict: createClient(PredictService, props.transport),
    metrics: createClient(MetricsService, props.transport),
  };
  return <ClientsContext.Provider value={clients}>{props.children}</ClientsContext.Provider>;
}

export function useClients(): Clients {
  const clients = useContext(ClientsContext);
  if (!clients) {
    throw new Error("useClients() needs a <ClientsProvider> above it");
  }
  return clients;
}
