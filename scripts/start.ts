import path from "node:path";
import {
  CANDIDATE_MODELS,
  type CandidateService,
  DEFAULT_PORTS,
  type MeshPorts,
  PortsInUseError,
  ROOT,
  startMesh,
} from "./lib/mesh.js";

/**
 * `npm start`: runs the whole local mesh with the bundled models and prints where everything is.
 * Ports come from the defaults or SHADOWMESH_<NAME>_PORT (for example SHADOWMESH_APP_PORT=8081); the SQLite store
 * and the logs live under SHADOWMESH_DATA_DIR (default .data/); SHADOWMESH_MIRROR_PERCENT (0-100, default 100) is the
 * share of calls app-service mirrors to each candidate, and the share metrics-service's coverage check expects;
 * SHADOWMESH_CANDIDATES (default "spam-v2,spam-lite") names the candidate models that shadow the primary spam-v1.
 *
 * The services are supervised: one that exits or crashes is restarted with a growing pause (1 s, 2 s, 4 s … up to
 * 30 s, reset after 30 s of running) while the others keep running, and every such event is one line here; a
 * service that keeps exiting is reported as crash-looping. Ctrl-C, SIGTERM or SIGHUP (the terminal closed) stops
 * every service in order — app-service, then the model-services, then metrics-service — within 10 s. If this
 * launcher dies without stopping them (kill -9), each service notices and stops by itself.
 */

const portNames: Partial<Record<keyof MeshPorts, string>> = {};
const ports: Partial<MeshPorts> = {};
for (const key of Object.keys(DEFAULT_PORTS) as (keyof MeshPorts)[]) {
  const variable = `SHADOWMESH_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}_PORT`;
  portNames[key] = variable;
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

let mirrorPercent: number | undefined;
if (process.env.SHADOWMESH_MIRROR_PERCENT !== undefined) {
  mirrorPercent = Number(process.env.SHADOWMESH_MIRROR_PERCENT);
  if (!(process.env.SHADOWMESH_MIRROR_PERCENT.trim() !== "" && mirrorPercent >= 0 && mirrorPercent <= 100)) {
    console.error(
      `npm start: SHADOWMESH_MIRROR_PERCENT=${process.env.SHADOWMESH_MIRROR_PERCENT} is not a percentage (0-100)`,
    );
    process.exit(2);
  }
}

const byModel = new Map(
  (Object.entries(CANDIDATE_MODELS) as [CandidateService, string][]).map(([service, model]) => [
    model,
    service,
  ]),
);
const candidates: CandidateService[] = [];
for (const name of (process.env.SHADOWMESH_CANDIDATES ?? [...byModel.keys()].join(",")).split(",")) {
  const service = byModel.get(name.trim());
  if (service === undefined) {
    console.error(
      `npm start: SHADOWMESH_CANDIDATES names "${name.trim()}", which is not a bundled candidate (${[...byModel.keys()].join(", ")})`,
    );
    process.exit(2);
  }
  candidates.push(service);
}

const started = Date.now();
let mesh: Awaited<ReturnType<typeof startMesh>> | undefined;
let stopping = false;

const stop = async (why: string, exitCode = 0) => {
  if (stopping) {
    return;
  }
  stopping = true;
  console.log(`\n${why}: stopping the mesh (app-service, then the model-services, then metrics-service)…`);
  const begin = Date.now();
  await mesh?.stop(9000);
  console.log(`stopped in ${((Date.now() - begin) / 1000).toFixed(1)} s`);
  process.exit(exitCode);
};
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
// The terminal closed: stop everything (the services are in their own process groups and would not hear it).
process.on("SIGHUP", () => void stop("SIGHUP"));
// `npm start` runs this file under a wrapper (tsx); if the wrapper dies without passing a signal on, stop too.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) {
    void stop("parent process gone");
  }
}, 500).unref();

try {
  mesh = await startMesh({
    ports,
    portNames,
    supervise: true,
    candidates,
    ...(mirrorPercent !== undefined ? { mirrorPercent } : {}),
    ...(process.env.SHADOWMESH_DATA_DIR
      ? { dataDir: path.resolve(process.env.SHADOWMESH_DATA_DIR, "metrics") }
      : {}),
    ...(process.env.SHADOWMESH_DATA_DIR
      ? { logDir: path.resolve(process.env.SHADOWMESH_DATA_DIR, "logs") }
      : {}),
    onLogLine: (service, line) => console.log(`[${service}] ${line}`),
    onEvent: (event) => {
      if (!stopping) {
        (event.kind === "crash-loop" ? console.error : console.log)(event.line);
      }
    },
  });
} catch (error) {
  if (error instanceof PortsInUseError) {
    for (const line of error.lines) {
      console.error(`npm start: ${line}`);
    }
    console.error("npm start: nothing was started; free the ports or choose others (SHADOWMESH_*_PORT).");
  } else {
    console.error(`npm start: ${error instanceof Error ? error.message : String(error)}`);
  }
  process.exit(1);
}

if (!stopping) {
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
  console.log("A service that exits is restarted (one line here each time). Press Ctrl-C to stop.\n");
}
