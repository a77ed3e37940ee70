import { type Logger, type LoggerOptions, pino } from "pino";

export type { Logger } from "pino";

/**
 * Structured JSON logs (pino) with the service name on every line.
 * Per-request lines belong at debug level; errors carry the request id (`requestId`).
 */
export function createLogger(service: string, level: string, destination?: pino.DestinationStream): Logger {
  const options: LoggerOptions = {
    level,
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ["*.password", "*.token", "*.secret"], censor: "[redacted]" },
  };
  return destination ? pino(options, destination) : pino(options);
}
