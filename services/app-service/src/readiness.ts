import type { Client } from "@connectrpc/connect";
import type { Logger } from "@shadowmesh/common";
import { type Health, HealthCheckResponse_ServingStatus } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";

export interface ReadinessOptions {
  /** grpc.health.v1 client of the primary model-service. */
  health: Client<typeof Health>;
  /** How often to check. */
  intervalMs: number;
  logger: Logger;
  /** Told the result of every check (the app_model_service_ready gauge). */
  onResult?: (serving: boolean) => void;
}

/**
 * app-service is ready when the primary model-service answers its gRPC health check (service "") with SERVING:
 * without it no Predict can succeed. Checked at start and then every interval; /readyz reads the last result, so a
 * probe never waits on the network. The shadow and metrics-service do not count: without them users still get
 * their predictions.
 */
export class Readiness {
  readonly #options: ReadinessOptions;
  #serving = false;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  constructor(options: ReadinessOptions) {
    this.#options = options;
  }

  get ready(): boolean {
    return this.#serving;
  }

  /** Checks now and then every interval, until stop(). Resolves after the first check. */
  async start(): Promise<void> {
    this.#timer = setInterval(() => void this.check(), this.#options.intervalMs);
    this.#timer.unref();
    await this.check();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Checks once and returns whether model-service is serving. */
  async check(): Promise<boolean> {
    if (this.#checking) {
      return this.#serving;
    }
    this.#checking = true;
    let serving = false;
    let problem: string | undefined;
    try {
      const response = await this.#options.health.check(
        { service: "" },
        { timeoutMs: Math.min(this.#options.intervalMs, 1000) },
      );
      serving = response.status === HealthCheckResponse_ServingStatus.SERVING;
      problem = serving ? undefined : HealthCheckResponse_ServingStatus[response.status];
    } catch (error) {
      problem = error instanceof Error ? error.message : String(error);
    } finally {
      this.#checking = false;
    }
    if (serving !== this.#serving) {
      if (serving) {
        this.#options.logger.info("model-service is serving: ready");
      } else {
        this.#options.logger.warn({ problem }, "model-service is not serving: not ready");
      }
    }
    this.#serving = serving;
    this.#options.onResult?.(serving);
    return serving;
  }
}
