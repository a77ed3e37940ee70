import type * as grpc from "@grpc/grpc-js";
import { HealthImplementation, type ServingStatus } from "grpc-health-check";

/**
 * grpc.health.v1 for a grpc-js server (the `grpc-health-check` package): `""` is the whole server, and each
 * service name has its own status. Everything starts NOT_SERVING; the service flips to SERVING once it can do its
 * job and back to NOT_SERVING when it shuts down.
 */
export class HealthReporter {
  readonly #impl: HealthImplementation;
  readonly #services: string[];
  #status: ServingStatus = "NOT_SERVING";

  constructor(serviceNames: readonly string[]) {
    this.#services = ["", ...serviceNames];
    this.#impl = new HealthImplementation(
      Object.fromEntries(this.#services.map((name) => [name, "NOT_SERVING"])),
    );
  }

  addToServer(server: grpc.Server): void {
    this.#impl.addToServer(server);
  }

  /** Sets the status of the server and of every registered service. */
  set(status: ServingStatus): void {
    this.#status = status;
    for (const name of this.#services) {
      this.#impl.setStatus(name, status);
    }
  }

  get serving(): boolean {
    return this.#status === "SERVING";
  }
}
