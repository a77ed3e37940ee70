export * from "./metrics-sink.js";
export * from "./process.js";
export * from "./promtool.js";
