import type { Logger } from "pino";

export interface ShutdownStep {
  name: string;
  run: () => Promise<void> | void;
}

/**
 * Graceful shutdown on SIGTERM and SIGINT: runs the steps in order (typically: health NOT_SERVING, a short pause
 * while load balancers notice, stop accepting and drain in-flight calls, flush buffers, close stores) under an
 * overall time limit, then exits 0 — or 1 if the limit passes first. A second signal exits at once.
 */
export function installShutdown(logger: Logger, steps: readonly ShutdownStep[], timeoutMs: number): void {
  let shuttingDown = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (shuttingDown) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    shuttingDown = true;
    logger.info({ signal, timeoutMs }, "shutting down");
    const timer = setTimeout(() => {
      logger.error({ timeoutMs }, "shutdown took too long: exiting");
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    void (async () => {
      for (const step of steps) {
        const started = performance.now();
        try {
          await step.run();
          logger.debug(
            { step: step.name, ms: Math.round(performance.now() - started) },
            "shutdown step done",
          );
        } catch (error) {
          logger.error({ err: error, step: step.name }, "shutdown step failed");
        }
      }
      logger.info("stopped");
      logger.flush();
      process.exit(0);
    })();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

/** Resolves after `ms`, for the pause between "not ready" and "stop accepting". */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
