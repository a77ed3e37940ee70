import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcJsTransport, freePortsFor } from "@shadowmesh/common";
import { Health, HealthCheckResponse_ServingStatus } from "@shadowmesh/gen/grpc/health/v1/health_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResolvedStage } from "./dockerfile.js";
import {
  assembleImage,
  type Container,
  isRoot,
  layoutStep,
  loadDockerfile,
  numericUser,
  ROOT,
  removeTree,
  runLayout,
  SERVICES,
  type Service,
  snapshot,
  startContainer,
  until,
  volume,
} from "./image-files.js";

/**
 * Each service starts and answers its health check from a production-only install laid out the way the image lays
 * it out: the build stage's layout step runs as the Dockerfile runs it (same script, same arguments, on this
 * repository after `npm ci` and `npm run build`), each target's file system is assembled by following its COPY
 * instructions, and its ENTRYPOINT runs with its ENV and — as root — its USER, on free ports, with the data dir and
 * /tmp on "volumes". Nothing under /app may change. A runtime import that lives in devDependencies must make the
 * start fail: proven by moving real runtime dependencies into devDependencies in a copy of the repository.
 */

const file = loadDockerfile();
const step = layoutStep(file);
const SECRET = "images-test-feedback-secret-0123456789abcdef";

let work: string;
const images = new Map<Service, { root: string; resolved: ResolvedStage }>();
const containers: Container[] = [];

function healthStatus(port: number): Promise<number> {
  const transport = createGrpcJsTransport({ address: `127.0.0.1:${port}` });
  return createClient(Health, transport)
    .check({ service: "" }, { timeoutMs: 2000 })
    .then((response) => response.status)
    .finally(() => transport.close());
}

async function waitForHealth(container: Container, port: number, name: string) {
  await until(
    async () => {
      if (container.child.exitCode !== null || container.child.signalCode !== null) {
        throw new Error(`${name} exited before it was healthy:\n${container.output()}`);
      }
      return healthStatus(port).then(
        (status) => status === HealthCheckResponse_ServingStatus.SERVING,
        () => false,
      );
    },
    60_000,
    `${name} gRPC health SERVING`,
  );
}

async function stop(container: Container, name: string) {
  container.child.kill("SIGTERM");
  const exit = await Promise.race([
    container.exited,
    new Promise<string>((resolve) => setTimeout(() => resolve("timeout"), 15_000)),
  ]);
  expect(exit, `${name} exit after SIGTERM:\n${container.output()}`).toBe(0);
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "shadowmesh-images-"));
  fs.chmodSync(work, 0o755); // the image's user must reach the image roots
  const started = Date.now();
  const out = path.join(work, "out");
  const layout = await runLayout(ROOT, out, step.services);
  const layoutSeconds = (Date.now() - started) / 1000;
  if (layout.code !== 0) {
    throw new Error(`the layout step failed:\n${layout.output}`);
  }
  console.log(`layout step: ${layoutSeconds.toFixed(1)} s\n${layout.output.trim()}`);
  const assembling = Date.now();
  for (const service of SERVICES) {
    const root = path.join(work, "images", service);
    const resolved = assembleImage(file, service, root, { workdirHost: ROOT, outHost: out });
    // "/" and WORKDIR belong to root in the image (0755): the image's user cannot write there. Here they may belong
    // to the user running the tests, so they lose their write bits too (readOnlyRootFilesystem).
    fs.chmodSync(path.join(root, resolved.workdir), 0o555);
    fs.chmodSync(root, 0o555);
    images.set(service, { root, resolved });
  }
  console.log(`assembling the three images: ${((Date.now() - assembling) / 1000).toFixed(1)} s`);
}, 180_000);

afterAll(async () => {
  for (const container of containers) {
    container.child.kill("SIGKILL");
  }
  await Promise.all(containers.map((container) => container.exited));
  if (work) {
    const removing = Date.now();
    removeTree(work);
    console.log(`removing the scratch files: ${((Date.now() - removing) / 1000).toFixed(1)} s`);
  }
});

function image(service: Service) {
  const found = images.get(service);
  if (found === undefined) {
    throw new Error(`${service} was not assembled`);
  }
  return found;
}

/** Every npm package directory under an image's /app/node_modules (scoped ones as @scope/name). */
function packagesOf(service: Service): string[] {
  const modules = path.join(image(service).root, "app", "node_modules");
  return fs
    .readdirSync(modules)
    .flatMap((name) =>
      name.startsWith("@")
        ? fs.readdirSync(path.join(modules, name)).map((inner) => `${name}/${inner}`)
        : [name],
    );
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: "utf8" });
}

describe("the production layout of each image", () => {
  it("holds each service's entrypoint, and only the native modules, models and web app that service needs", () => {
    for (const service of SERVICES) {
      const app = path.join(image(service).root, "app");
      expect(fs.existsSync(path.join(app, "services", service, "dist", "main.js")), service).toBe(true);
      expect(packagesOf(service), service).toEqual(
        expect.arrayContaining(["@shadowmesh/common", "@shadowmesh/gen", `@shadowmesh/${service}`]),
      );
    }
    expect(packagesOf("model-service")).toContain("onnxruntime-node");
    expect(packagesOf("app-service")).not.toContain("onnxruntime-node");
    expect(packagesOf("metrics-service")).not.toContain("onnxruntime-node");
    expect(packagesOf("metrics-service")).toContain("better-sqlite3");
    expect(packagesOf("model-service")).not.toContain("better-sqlite3");
    expect(packagesOf("app-service")).not.toContain("better-sqlite3");

    const models = path.join(image("model-service").root, "app", "models");
    expect(fs.readdirSync(models).sort()).toEqual(["spam-lite", "spam-v1", "spam-v2"]);
    for (const version of ["spam-lite", "spam-v1", "spam-v2"]) {
      for (const name of ["model.onnx", "model.json"]) {
        const shipped = fs.readFileSync(path.join(models, version, name));
        expect(shipped.equals(fs.readFileSync(path.join(ROOT, "models", version, name))), name).toBe(true);
      }
    }
    expect(fs.existsSync(path.join(image("app-service").root, "app", "web", "dist", "index.html"))).toBe(
      true,
    );
    expect(fs.existsSync(path.join(image("model-service").root, "app", "web"))).toBe(false);
    expect(fs.existsSync(path.join(image("metrics-service").root, "app", "models"))).toBe(false);

    // Only this platform's onnxruntime binaries, only better-sqlite3's compiled addon.
    const ortBin = path.join(image("model-service").root, "app/node_modules/onnxruntime-node/bin/napi-v6");
    expect(fs.readdirSync(ortBin)).toEqual([process.platform]);
    expect(fs.readdirSync(path.join(ortBin, process.platform))).toEqual([process.arch]);
    const sqlite = path.join(image("metrics-service").root, "app/node_modules/better-sqlite3");
    expect(filesUnder(path.join(sqlite, "build")).sort()).toEqual(["Release", "Release/better_sqlite3.node"]);
  });

  it("has no development packages, compiled tests, test helpers or source maps", () => {
    const devOnly = [
      "vitest",
      "typescript",
      "tsx",
      "vite",
      "@biomejs/biome",
      "@bufbuild/buf",
      "dockerfile-utils",
    ];
    for (const service of SERVICES) {
      const packages = packagesOf(service);
      for (const name of devOnly) {
        expect(packages, `${service} holds ${name}`).not.toContain(name);
      }
      const services = path.join(image(service).root, "app", "services");
      const code = filesUnder(services);
      expect(
        code.filter((name) => /\.test\.|\.map$|\.d\.ts$|(^|\/)(testing|e2e|bench)(\/|$)/.test(name)),
      ).toEqual([]);
      expect(fs.existsSync(path.join(services, "..", "ml")), service).toBe(false);
    }
  });

  it("is read-only for the image's user: files and directories have no write bit for anyone", () => {
    for (const service of SERVICES) {
      const app = path.join(image(service).root, "app");
      const writable = [app, ...filesUnder(app).map((name) => path.join(app, name))].filter((full) => {
        const stat = fs.lstatSync(full);
        return !stat.isSymbolicLink() && (stat.mode & 0o222) !== 0;
      });
      expect(writable, service).toEqual([]);
    }
    // And the kernel agrees: the image's user cannot create or change a file there.
    const { root, resolved } = image("model-service");
    const probe = spawnSync(
      process.execPath,
      [
        "-e",
        `const fs = require("node:fs");
         for (const target of process.argv.slice(1)) {
           try { fs.appendFileSync(target, "x"); console.log("wrote " + target); } catch (e) { console.log(e.code); }
         }`,
        path.join(root, "app", "services", "model-service", "dist", "main.js"),
        path.join(root, "app", "new-file"),
        path.join(root, "app", "models", "spam-v1", "model.json"),
      ],
      { encoding: "utf8", ...(isRoot ? numericUser(resolved.user) : {}) },
    );
    expect(probe.stdout.trim().split("\n")).toEqual(["EACCES", "EACCES", "EACCES"]);
  });
});

describe("the services started from their image layouts (NODE_ENV=production, the image's user)", () => {
  it("metrics-service, model-service and app-service start, answer health checks, serve a prediction, and stop cleanly", async () => {
    const before = new Map(SERVICES.map((service) => [service, snapshot(image(service).root)]));
    const host = "127.0.0.1";
    const ports = await freePortsFor(["metrics", "metricsOps", "model", "modelOps", "app", "appOps"]);

    const metricsImage = image("metrics-service");
    const dataDir = volume(path.join(work, "volumes", "metrics-data"), metricsImage.resolved);
    const metrics = startContainer(metricsImage.resolved, metricsImage.root, {
      METRICS_SERVICE_HOST: host,
      METRICS_SERVICE_GRPC_PORT: String(ports.metrics),
      METRICS_SERVICE_METRICS_PORT: String(ports.metricsOps),
      METRICS_SERVICE_DATA_DIR: dataDir,
      METRICS_SERVICE_FEEDBACK_SECRET: SECRET,
      TMPDIR: volume(path.join(work, "volumes", "metrics-tmp"), metricsImage.resolved),
    });
    containers.push(metrics);
    await waitForHealth(metrics, ports.metrics, "metrics-service");

    const modelImage = image("model-service");
    const model = startContainer(modelImage.resolved, modelImage.root, {
      MODEL_SERVICE_HOST: host,
      MODEL_SERVICE_GRPC_PORT: String(ports.model),
      MODEL_SERVICE_METRICS_PORT: String(ports.modelOps),
      MODEL_SERVICE_METRICS_SERVICE_ADDRESS: `${host}:${ports.metrics}`,
      MODEL_SERVICE_MODEL_DIR: path.join(modelImage.root, "app/models/spam-v2"), // the pod's choice
      MODEL_SERVICE_ROLE: "SHADOW",
      TMPDIR: volume(path.join(work, "volumes", "model-tmp"), modelImage.resolved),
    });
    containers.push(model);
    await waitForHealth(model, ports.model, "model-service");

    const appImage = image("app-service");
    const app = startContainer(appImage.resolved, appImage.root, {
      APP_SERVICE_HOST: host,
      APP_SERVICE_PORT: String(ports.app),
      APP_SERVICE_METRICS_PORT: String(ports.appOps),
      APP_SERVICE_MODEL_SERVICE_ADDRESS: `${host}:${ports.model}`,
      APP_SERVICE_METRICS_SERVICE_ADDRESS: `${host}:${ports.metrics}`,
      APP_SERVICE_FEEDBACK_SECRET: SECRET,
      APP_SERVICE_PUBLIC_HOSTS: `${host}:${ports.app}`,
      APP_SERVICE_DEADLINE_MS: "10000", // a loaded CI machine, not a latency test
      TMPDIR: volume(path.join(work, "volumes", "app-tmp"), appImage.resolved),
    });
    containers.push(app);
    await until(
      async () => {
        if (app.child.exitCode !== null) {
          throw new Error(`app-service exited before it was ready:\n${app.output()}`);
        }
        const response = await fetch(`http://${host}:${ports.appOps}/readyz`).catch(() => undefined);
        return response?.status === 200;
      },
      60_000,
      "app-service /readyz 200",
    );

    // The whole path works from the production layouts: the web app, a prediction by the ONNX model of the
    // pod's choice, and a report computed by metrics-service's worker over its SQLite store.
    const page = await fetch(`http://${host}:${ports.app}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
    const predicted = await fetch(
      `http://${host}:${ports.app}/shadowmesh.predict.v1.PredictService/Predict`,
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: "Congratulations, you WIN a FREE cruise! Click now" }),
      },
    );
    const prediction = (await predicted.json()) as { prediction?: { label?: string; modelName?: string } };
    expect(predicted.status, JSON.stringify(prediction)).toBe(200);
    expect(prediction.prediction?.label).toMatch(/^(spam|ham)$/);
    expect(prediction.prediction?.modelName).toBe("spam-v2");
    // The record travels asynchronously (batched reports), so poll; the first report also starts the worker.
    let lastReport = "";
    await until(
      async () => {
        const response = await fetch(
          `http://${host}:${ports.app}/shadowmesh.metrics.v1.MetricsService/GetShadowReport`,
          { method: "POST", headers: { "content-type": "application/json" }, body: "{}" },
        );
        lastReport = `${response.status} ${await response.text()}`;
        return (
          response.status === 200 && JSON.parse(lastReport.slice(4)).report?.totals?.shadowRecordCount === "1"
        );
      },
      30_000,
      "the prediction's record in the shadow report",
    ).catch((error: Error) => {
      throw new Error(`${error.message}; last answer: ${lastReport.slice(0, 300)}\n${metrics.output()}`);
    });
    expect(fs.readdirSync(dataDir)).toContain("shadow.db");

    await stop(app, "app-service");
    await stop(model, "model-service");
    await stop(metrics, "metrics-service");
    for (const service of SERVICES) {
      expect(snapshot(image(service).root), `${service}: nothing under / changed`).toEqual(
        before.get(service),
      );
    }
  }, 180_000);
});

describe("a runtime import that lives in devDependencies", () => {
  /** A copy of the repository (manifests, build output, models; node_modules hard-linked when possible). */
  function copyRepository(into: string) {
    fs.mkdirSync(into, { recursive: true });
    const workspaces = (
      JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
        workspaces: string[];
      }
    ).workspaces;
    for (const name of ["package.json", "package-lock.json", ...workspaces.map((w) => `${w}/package.json`)]) {
      fs.mkdirSync(path.dirname(path.join(into, name)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, name), path.join(into, name));
    }
    for (const dir of [
      "gen/es",
      "services/common/dist",
      "models",
      "web/dist",
      ...SERVICES.map((s) => `services/${s}/dist`),
    ]) {
      fs.cpSync(path.join(ROOT, dir), path.join(into, dir), { recursive: true, verbatimSymlinks: true });
    }
    try {
      // Hard links: the layout script only reads them (it copies what it ships), so the originals are safe.
      execFileSync("cp", ["-al", path.join(ROOT, "node_modules"), path.join(into, "node_modules")]);
    } catch {
      execFileSync("cp", ["-a", path.join(ROOT, "node_modules"), path.join(into, "node_modules")]);
    }
  }

  function moveToDevDependencies(repo: string, workspace: string, name: string) {
    const manifestPath = path.join(repo, workspace, "package.json");
    const manifest = JSON.parse(fs.readFileSync(manifestPath, "utf8")) as {
      dependencies: Record<string, string>;
      devDependencies?: Record<string, string>;
    };
    const version = manifest.dependencies[name];
    expect(version, `${workspace} depends on ${name}`).toBeDefined();
    delete manifest.dependencies[name];
    manifest.devDependencies = { ...manifest.devDependencies, [name]: version as string };
    fs.writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  }

  // The copies live inside the repository so that hard links work (same file system as node_modules).
  const scratch = path.join(ROOT, ".test-output", "images");

  afterAll(() => removeTree(scratch));

  it.each([
    { service: "model-service", workspace: "services/model-service", dependency: "onnxruntime-node" },
    { service: "metrics-service", workspace: "services/metrics-service", dependency: "better-sqlite3" },
    // Through a workspace package: common's own dependency.
    { service: "app-service", workspace: "services/common", dependency: "envalid" },
  ] as const)(
    "$workspace: $dependency moved to devDependencies → left out of $service's layout → the start fails",
    async ({ service, workspace, dependency }) => {
      const repo = path.join(scratch, `${service}-${process.pid}`);
      removeTree(repo);
      copyRepository(repo);
      moveToDevDependencies(repo, workspace, dependency);

      const out = path.join(work, `devdep-${service}`);
      const layout = await runLayout(repo, out, [service]);
      expect(layout.code, layout.output).toBe(0);
      expect(fs.existsSync(path.join(out, service, "node_modules", dependency))).toBe(false);

      const root = path.join(work, "images-devdep", service);
      const resolved = assembleImage(file, service, root, { workdirHost: repo, outHost: out });
      const free = await freePortsFor(["APP_SERVICE_PORT", "APP_SERVICE_METRICS_PORT"]);
      const appPorts = {
        APP_SERVICE_PORT: String(free.APP_SERVICE_PORT),
        APP_SERVICE_METRICS_PORT: String(free.APP_SERVICE_METRICS_PORT),
      };
      const container = startContainer(resolved, root, {
        MODEL_SERVICE_HOST: "127.0.0.1",
        MODEL_SERVICE_GRPC_PORT: "0",
        MODEL_SERVICE_METRICS_PORT: "0",
        METRICS_SERVICE_HOST: "127.0.0.1",
        METRICS_SERVICE_GRPC_PORT: "0",
        METRICS_SERVICE_METRICS_PORT: "0",
        METRICS_SERVICE_DATA_DIR: volume(path.join(work, "volumes", `devdep-${service}`), resolved),
        APP_SERVICE_HOST: "127.0.0.1",
        ...appPorts,
      });
      containers.push(container);
      const exit = await Promise.race([
        container.exited,
        new Promise<string>((resolve) => setTimeout(() => resolve("still running"), 30_000)),
      ]);
      expect(exit, container.output()).not.toBe(0);
      expect(exit).not.toBe("still running");
      expect(container.output()).toContain(`Cannot find package '${dependency}'`);
    },
    120_000,
  );
});
