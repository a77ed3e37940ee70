export * from "./metrics-sink.js";
export * from "./process.js";
