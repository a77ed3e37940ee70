import fs from "node:fs";
import path from "node:path";
import { validate } from "dockerfile-utils";
import { describe, expect, it } from "vitest";
import { execForm, parseDockerfile, parseDockerIgnore, resolveStage } from "./dockerfile.js";
import {
  LAYOUT_SCRIPT,
  layoutStep,
  loadDockerfile,
  loadDockerIgnore,
  ROOT,
  SERVICES,
  trackedFiles,
} from "./image-files.js";

/**
 * The Dockerfile without a Docker engine: it lints clean, its targets are what the chart relies on (user, entrypoint,
 * ports, env, labels, a pinned base shared with the build stage), and every file it copies from the build context
 * exists after `npm run build` and is not left out by `.dockerignore`.
 */

const rootPackage = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
  version: string;
  license: string;
  workspaces: string[];
};

/** Every Dockerfile of the repository (outside installed packages and build output). */
function dockerfiles(): string[] {
  const found: string[] = [];
  const skip = new Set(["node_modules", ".git", "dist", ".data", ".test-output", ".tools"]);
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) {
        if (!skip.has(entry.name)) {
          walk(path.join(dir, entry.name));
        }
      } else if (/^(Dockerfile|Containerfile)(\..+)?$|\.[Dd]ockerfile$/.test(entry.name)) {
        found.push(path.relative(ROOT, path.join(dir, entry.name)));
      }
    }
  };
  walk(ROOT);
  return found.sort();
}

const EXPECTED: Record<
  (typeof SERVICES)[number],
  { prefix: string; ports: string[]; env: Record<string, string> }
> = {
  "model-service": {
    prefix: "MODEL_SERVICE_",
    ports: ["50051", "9101"],
    env: { MODEL_SERVICE_MODEL_DIR: "/app/models/spam-v1" },
  },
  "app-service": {
    prefix: "APP_SERVICE_",
    ports: ["8080", "9100"],
    env: { APP_SERVICE_WEB_DIR: "/app/web/dist" },
  },
  "metrics-service": {
    prefix: "METRICS_SERVICE_",
    ports: ["50053", "9103"],
    env: { METRICS_SERVICE_DATA_DIR: "/var/lib/shadowmesh" },
  },
};

describe("Dockerfile lint (dockerfile-utils)", () => {
  it("finds the Dockerfile and every one of them lints without a single problem", () => {
    const files = dockerfiles();
    expect(files).toContain("Dockerfile");
    for (const file of files) {
      const problems = validate(fs.readFileSync(path.join(ROOT, file), "utf8")).map(
        (problem) => `${file}:${problem.range.start.line + 1}: ${problem.message}`,
      );
      expect(problems).toEqual([]);
    }
  });

  it("the linter does report problems (a broken Dockerfile is not clean)", () => {
    const messages = validate("FROM node:20\ncopy a\nWORKDIR app\nENTRYPOINT\n").map((p) => p.message);
    expect(messages.length).toBeGreaterThanOrEqual(3);
    expect(messages.join("\n")).toMatch(/uppercase/);
    expect(messages.join("\n")).toMatch(/absolute/);
  });
});

describe("Dockerfile targets", () => {
  const file = loadDockerfile();
  const build = resolveStage(file, "build");

  it("has a target per service and a build stage on one pinned Node 20 bookworm-slim base", () => {
    expect(file.stages.map((stage) => stage.name)).toEqual(expect.arrayContaining(["build", ...SERVICES]));
    expect(build.baseImage).toMatch(/^node:20\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?$/);
    for (const service of SERVICES) {
      // Same Debian and Node as the stage that compiled the native addons.
      expect(resolveStage(file, service).baseImage).toBe(build.baseImage);
    }
  });

  for (const service of SERVICES) {
    it(`${service}: non-root numeric user, exec-form node entrypoint, production env, ports, labels`, () => {
      const target = resolveStage(file, service);
      const expected = EXPECTED[service];
      expect(target.user).toBe("10001:10001");
      expect(target.workdir).toBe("/app");
      expect(target.entrypoint && execForm(target.entrypoint)).toEqual([
        "node",
        `services/${service}/dist/main.js`,
      ]);
      expect(target.cmd).toBeUndefined();
      expect(target.env.NODE_ENV).toBe("production");
      expect(target.env[`${expected.prefix}HOST`]).toBe("0.0.0.0");
      expect(target.env).toMatchObject(expected.env);
      expect(target.env.ONNXRUNTIME_NODE_INSTALL).toBeUndefined(); // build settings stay in the build stage
      expect(target.exposed.sort()).toEqual([...expected.ports].sort());
      expect(target.labels).toMatchObject({
        "org.opencontainers.image.title": `shadowmesh-${service}`,
        "org.opencontainers.image.version": rootPackage.version,
        "org.opencontainers.image.licenses": rootPackage.license,
      });
      for (const key of ["description", "source", "url", "vendor", "base.name"]) {
        expect(target.labels[`org.opencontainers.image.${key}`]).toMatch(/\S/);
      }
      expect(target.labels["org.opencontainers.image.base.name"]).toContain(target.baseImage);
      // Files stay root's: a --chown to the service user would make the code writable by the service.
      for (const copy of target.copies) {
        expect(copy.chown, `line ${copy.line}`).toBeUndefined();
      }
      // The image's /app is exactly the layout the tests start: one COPY of the build stage's out dir.
      const step = layoutStep(file);
      expect(target.copies.map((copy) => [copy.from, copy.sources, copy.absoluteDest])).toEqual([
        ["build", [`${step.outDir}/${service}/`], "/app/"],
      ]);
    });
  }

  it("only metrics-service declares a volume, its data dir", () => {
    const metrics = resolveStage(file, "metrics-service");
    expect(metrics.volumes).toEqual(["/var/lib/shadowmesh"]);
    // A fresh named volume takes the directory's owner: the service's user must be able to write its store.
    expect(
      metrics.runs.some(({ instruction }) =>
        /mkdir -p \/var\/lib\/shadowmesh && chown 10001:10001 \/var\/lib\/shadowmesh/.test(instruction.args),
      ),
    ).toBe(true);
    expect(resolveStage(file, "model-service").volumes).toEqual([]);
    expect(resolveStage(file, "app-service").volumes).toEqual([]);
  });

  it("the build stage installs with npm ci (onnxruntime download skipped), builds, then lays out every service", () => {
    const runs = build.runs.map(({ instruction }) => instruction.args);
    const ci = runs.findIndex((run) => /\bnpm ci\b/.test(run));
    const buildRun = runs.indexOf("npm run build");
    const layout = runs.findIndex((run) => run.includes(LAYOUT_SCRIPT));
    expect(ci).toBeGreaterThanOrEqual(0);
    expect(buildRun).toBeGreaterThan(ci);
    expect(layout).toBeGreaterThan(buildRun);
    expect(runs.some((run) => /\bnpm (install|i)\b/.test(run))).toBe(false);
    expect(build.env.ONNXRUNTIME_NODE_INSTALL).toBe("skip");
    // The compiler toolchain for better-sqlite3 is in the build stage only.
    expect(runs.some((run) => /apt-get install .*python3.*make.*g\+\+/.test(run))).toBe(true);
    for (const service of SERVICES) {
      expect(
        resolveStage(file, service).runs.some(({ instruction }) => /apt-get/.test(instruction.args)),
      ).toBe(false);
    }
    expect(layoutStep(file).services).toEqual([]); // no list: all services
  });

  it("copies every workspace's package.json to its place before npm ci (or npm ci fails in the builder)", () => {
    const stage = file.stages.find((candidate) => candidate.name === "build");
    const ciLine = stage?.instructions.find(
      (instruction) => instruction.keyword === "RUN" && /\bnpm ci\b/.test(instruction.args),
    )?.line;
    expect(ciLine).toBeDefined();
    const placed = new Set<string>();
    for (const copy of build.copies.filter((c) => c.line < (ciLine as number) && c.from === undefined)) {
      for (const source of copy.sources) {
        const dest = copy.absoluteDest.endsWith("/")
          ? `${copy.absoluteDest}${path.posix.basename(source)}`
          : copy.absoluteDest;
        placed.add(path.posix.relative("/src", dest));
        expect(dest, `line ${copy.line}`).toBe(`/src/${source}`);
      }
    }
    expect(build.workdir).toBe("/src");
    for (const manifest of [
      "package.json",
      "package-lock.json",
      ...rootPackage.workspaces.map((w) => `${w}/package.json`),
    ]) {
      expect(placed, manifest).toContain(manifest);
    }
  });
});

describe("the README's Container images section", () => {
  it("names every target's build command, its ports, its user and the base image the Dockerfile uses", () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const section = /^## Container images\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? "";
    expect(section).not.toBe("");
    const file = loadDockerfile();
    for (const service of SERVICES) {
      expect(section).toContain(
        `docker build --target ${service.padEnd(15)} -t ghcr.io/shadowmesh/${service}:${rootPackage.version} .`,
      );
      const row = section.split("\n").find((line) => line.startsWith(`| \`${service}\``)) ?? "";
      for (const port of resolveStage(file, service).exposed) {
        expect(row, `${service} row names port ${port}`).toContain(port);
      }
    }
    expect(section).toContain("10001");
    expect(section).toContain(resolveStage(file, "build").baseImage);
  });
});

describe("Dockerfile COPY sources and .dockerignore", () => {
  const file = loadDockerfile();
  const ignore = loadDockerIgnore();
  const stageNames = file.stages.map((stage) => stage.name);

  it("every context COPY source exists after npm run build and reaches the builder; --from names an earlier stage", () => {
    let checked = 0;
    for (const stage of file.stages) {
      for (const copy of resolveStage(file, stage.name ?? String(stage.index)).copies) {
        if (copy.from !== undefined) {
          const index = stageNames.indexOf(copy.from);
          expect(index, `line ${copy.line}: --from=${copy.from}`).toBeGreaterThanOrEqual(0);
          expect(index, `line ${copy.line}: --from=${copy.from} is defined later`).toBeLessThan(stage.index);
          continue;
        }
        for (const source of copy.sources) {
          expect(fs.existsSync(path.join(ROOT, source)), `line ${copy.line}: ${source} exists`).toBe(true);
          expect(ignore.excludes(source), `line ${copy.line}: ${source} is excluded by .dockerignore`).toBe(
            false,
          );
          // Nothing tracked under a copied folder may be left out: an over-broad pattern would break the build
          // in the builder only.
          const left = trackedFiles(source).filter((tracked) => ignore.excludes(tracked));
          expect(left, `line ${copy.line}: tracked files under ${source} left out`).toEqual([]);
          checked += 1;
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(10);
  });

  it("the files the images need are in the copied sources: entrypoints' sources, models, the web app's sources", () => {
    const copied = file.stages.flatMap((stage) =>
      resolveStage(file, stage.name ?? String(stage.index))
        .copies.filter((copy) => copy.from === undefined)
        .flatMap((copy) => copy.sources.map((source) => source.replace(/\/$/, ""))),
    );
    const sent = (file: string) =>
      !ignore.excludes(file) && copied.some((source) => file === source || file.startsWith(`${source}/`));
    for (const needed of [
      ...SERVICES.map((service) => `services/${service}/src/main.ts`),
      "services/common/src/index.ts",
      "gen/es/shadowmesh/predict/v1/predict_service_pb.js",
      "models/spam-v1/model.onnx",
      "models/spam-v2/model.onnx",
      "models/spam-v2/model.json",
      "web/index.html",
      "web/vite.config.ts",
      LAYOUT_SCRIPT,
      "tsconfig.json",
      "tsconfig.base.json",
    ]) {
      expect(fs.existsSync(path.join(ROOT, needed)), needed).toBe(true);
      expect(sent(needed), `${needed} reaches the builder`).toBe(true);
    }
  });

  it("leaves out installed packages, build output and local state (the image builds its own)", () => {
    for (const local of [
      "node_modules/vitest/package.json",
      "services/common/node_modules/x",
      "services/model-service/dist/main.js",
      "web/dist/index.html",
      "services/common/tsconfig.tsbuildinfo",
      "ml/.cache/corpus.json",
      ".data/metrics/shadow.db",
      ".git/HEAD",
      ".test-output/x",
      "charts/shadowmesh/values.yaml",
      "services/app-service/.env",
    ]) {
      expect(ignore.excludes(local), local).toBe(true);
    }
  });
});

describe("the parsers behind these checks", () => {
  it("parses continuations, comments, directives, ARG substitution and stage inheritance", () => {
    const parsed = parseDockerfile(
      [
        "# syntax=docker/dockerfile:1",
        "ARG BASE=node:20.1.0-bookworm-slim",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile ARG reference, not a template
        "FROM ${BASE} AS one",
        "ENV A=1 \\",
        "  # a comment inside a continuation",
        '  B="two words"',
        "WORKDIR /app",
        "USER 1:1",
        "FROM one AS two",
        "ARG BASE",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile ARG reference, not a template
        'LABEL base="${BASE}" plain=x',
        "WORKDIR sub",
        "ENV LEGACY value with spaces",
        "COPY --from=one /x/ ./y/",
        'ENTRYPOINT ["node", "main.js"]',
      ].join("\n"),
    );
    expect(parsed.directives).toEqual({ syntax: "docker/dockerfile:1" });
    const two = resolveStage(parsed, "two");
    expect(two.baseImage).toBe("node:20.1.0-bookworm-slim");
    expect(two.env).toEqual({ A: "1", B: "two words", LEGACY: "value with spaces" });
    expect(two.workdir).toBe("/app/sub");
    expect(two.user).toBe("1:1");
    expect(two.labels).toEqual({ base: "node:20.1.0-bookworm-slim", plain: "x" });
    expect(two.copies[0]).toMatchObject({ from: "one", sources: ["/x/"], absoluteDest: "/app/sub/y/" });
    expect(() => parseDockerfile("FROM $NOPE\n")).toThrow(/\$NOPE has no value/);
    // A global ARG is not visible in a stage that does not declare it again.
    expect(() => resolveStage(parseDockerfile("ARG X=1\nFROM a AS s\nLABEL x=$X\n"), "s")).toThrow(
      /\$X has no value/,
    );
    expect(() => parseDockerfile("FROM a\nFETCH b\n")).toThrow(/unknown instruction/);
    expect(() => parseDockerfile("FROM a\nRUN <<EOF\nx\nEOF\n")).toThrow(/heredoc/);
  });

  it("matches .dockerignore patterns like BuildKit: parents, **, negation, last match wins", () => {
    const ignore = parseDockerIgnore(
      ["# comment", "*", "!src/", "**/dist", "!src/keep/dist", "/docs/*.md", "a?c", "[xy].txt"].join("\n"),
    );
    expect(ignore.excludes("README.md")).toBe(true);
    expect(ignore.excludes("src/a.ts")).toBe(false);
    expect(ignore.excludes("src/deep/dist/x.js")).toBe(true);
    expect(ignore.excludes("src/dist")).toBe(true);
    expect(ignore.excludes("src/keep/dist/x.js")).toBe(false);
    expect(ignore.excludes("abc")).toBe(true);
    expect(ignore.excludes("x.txt")).toBe(true);
    const narrow = parseDockerIgnore("docs/*.md\n!docs/keep.md\n");
    expect(narrow.excludes("docs/a.md")).toBe(true);
    expect(narrow.excludes("docs/sub/a.md")).toBe(false);
    expect(narrow.excludes("docs/keep.md")).toBe(false);
    expect(narrow.excludes("other.md")).toBe(false);
  });
});
