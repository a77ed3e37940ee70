export * from "./code-of.js";
export * from "./metrics-sink.js";
export * from "./process.js";
export * from "./promtool.js";
