import type { Logger } from "pino";

export interface ShutdownStep {
  name: string;
  run: () => Promise<void> | void;
}

/**
 * Set by a launcher (scripts/lib/mesh.ts) that gives the service a pipe as stdin and wants it gone with the
 * launcher: `stdin` = shut down gracefully when stdin reaches its end (the launcher exited, however it died, even
 * by SIGKILL: the kernel closes its end of the pipe) or when the service's parent process changes (re-parented).
 */
export const PARENT_WATCH_ENV = "SHADOWMESH_EXIT_WITH_PARENT";

/**
 * Calls `onGone` once when the launcher that started this process is gone (see PARENT_WATCH_ENV); does nothing
 * unless the launcher asked for it.
 */
export function watchParent(onGone: (why: string) => void, env: NodeJS.ProcessEnv = process.env): void {
  if (env[PARENT_WATCH_ENV] !== "stdin") {
    return;
  }
  let gone = false;
  const fire = (why: string) => {
    if (!gone) {
      gone = true;
      clearInterval(poll);
      onGone(why);
    }
  };
  const parent = process.ppid;
  // Belt and braces: a launcher that leaked its pipe to another process would keep stdin open.
  const poll = setInterval(() => {
    if (process.ppid !== parent) {
      fire("parent process gone");
    }
  }, 500);
  poll.unref();
  process.stdin.on("end", () => fire("launcher gone (stdin closed)"));
  process.stdin.on("error", () => fire("launcher gone (stdin error)"));
  process.stdin.resume();
  // Reading stdin must not keep the process alive by itself.
  (process.stdin as unknown as { unref?: () => void }).unref?.();
}

/**
 * Graceful shutdown on SIGTERM and SIGINT: runs the steps in order (typically: health NOT_SERVING, a short pause
 * while load balancers notice, stop accepting and drain in-flight calls, flush buffers, close stores) under an
 * overall time limit, then exits 0 — or 1 if the limit passes first. A second signal exits at once. Under a
 * launcher that asked for it (PARENT_WATCH_ENV), the launcher's disappearance starts the same shutdown.
 */
export function installShutdown(logger: Logger, steps: readonly ShutdownStep[], timeoutMs: number): void {
  let shuttingDown = false;
  const onSignal = (signal: string) => {
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
  watchParent((why) => {
    logger.warn({ why }, "the launcher is gone: shutting down");
    onSignal("parent gone");
  });
}

/** Resolves after `ms`, for the pause between "not ready" and "stop accepting". */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
