import path from "node:path";
import { DEFAULT_PORTS, type MeshPorts, ROOT, startMesh } from "./lib/mesh.js";

/**
 * `npm start`: runs the whole local mesh with the bundled models and prints where everything is.
 * Ports come from the defaults or SHADOWMESH_<NAME>_PORT (for example SHADOWMESH_APP_PORT=8081); the SQLite store
 * and the logs live under SHADOWMESH_DATA_DIR (default .data/).
 * Ctrl-C (or SIGTERM) stops every service within 10 s.
 */

const ports: Partial<MeshPorts> = {};
for (const key of Object.keys(DEFAULT_PORTS) as (keyof MeshPorts)[]) {
  const variable = `SHADOWMESH_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_PORT`;
  const value = process.env[variable];
  if (value !== undefined) {
    const port = Number(value);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      console.error(`npm start: ${variable}=${value} is not a port number`);
      process.exit(2);
    }
    ports[key] = port;
  }
}

const started = Date.now();
let mesh: Awaited<ReturnType<typeof startMesh>> | undefined;
let stopping = false;

const stop = async (signal: string, exitCode = 0) => {
  if (stopping) {
    return;
  }
  stopping = true;
  console.log(`\n${signal}: stopping the mesh…`);
  const begin = Date.now();
  await mesh?.stop(8000);
  console.log(`stopped in ${((Date.now() - begin) / 1000).toFixed(1)} s`);
  process.exit(exitCode);
};
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));

try {
  mesh = await startMesh({
    ports,
    ...(process.env.SHADOWMESH_DATA_DIR
      ? { dataDir: path.resolve(process.env.SHADOWMESH_DATA_DIR, "metrics") }
      : {}),
    ...(process.env.SHADOWMESH_DATA_DIR
      ? { logDir: path.resolve(process.env.SHADOWMESH_DATA_DIR, "logs") }
      : {}),
    onLogLine: (service, line) => console.log(`[${service}] ${line}`),
  });
} catch (error) {
  console.error(`npm start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

const rows = mesh.urls();
const width = Math.max(...rows.map((row) => row.name.length));
const urlWidth = Math.max(...rows.map((row) => row.url.length));
console.log(`\nShadowmesh is running (started in ${((Date.now() - started) / 1000).toFixed(1)} s):\n`);
for (const row of rows) {
  console.log(`  ${row.name.padEnd(width)}  ${row.url.padEnd(urlWidth)}  ${row.what}`);
}
console.log(
  `\nLogs: ${path.relative(ROOT, mesh.logDir)}/<service>.log (warnings and errors also show here).`,
);
console.log("Press Ctrl-C to stop.\n");

for (const [name, child] of mesh.processes) {
  child.once("exit", (code, signal) => {
    if (!stopping) {
      console.error(`[${name}] exited unexpectedly (${code ?? signal}); stopping the mesh`);
      void stop("child exit", 1);
    }
  });
}
