import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { envFor, FEEDBACK_SECRET_FILE, feedbackSecret } from "./mesh.js";

/** The local mesh's feedback secret: made once, kept private in the data dir, the same after a restart. */
describe("the local mesh's feedback secret", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  const dataDir = () => {
    const dir = mkdtempSync(path.join(tmpdir(), "mesh-secret-"));
    dirs.push(dir);
    return dir;
  };

  it("is made once (32 random bytes), readable by its owner only, and kept across restarts", () => {
    const dir = dataDir();
    const first = feedbackSecret(dir);
    expect(first).toMatch(/^[\w-]{43}$/);
    const file = path.join(dir, FEEDBACK_SECRET_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(feedbackSecret(dir)).toBe(first);
    expect(feedbackSecret(dataDir())).not.toBe(first);
  });

  it("tightens a kept file's mode and replaces a secret too short to use", () => {
    const dir = dataDir();
    const file = path.join(dir, FEEDBACK_SECRET_FILE);
    writeFileSync(file, `${"k".repeat(40)}\n`, { mode: 0o644 });
    expect(feedbackSecret(dir)).toBe("k".repeat(40));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    writeFileSync(file, "short\n");
    const replaced = feedbackSecret(dir);
    expect(replaced).toMatch(/^[\w-]{43}$/);
    expect(readFileSync(file, "utf8").trim()).toBe(replaced);
  });
});

describe("the local mesh's settings", () => {
  const ports = {
    app: 1,
    appMetrics: 2,
    primary: 3,
    primaryMetrics: 4,
    shadow: 5,
    shadowMetrics: 6,
    lite: 9,
    liteMetrics: 10,
    metrics: 7,
    metricsMetrics: 8,
  };

  it.each([100, 50, 12.5, 0])(
    "tell metrics-service the share app-service mirrors (%s %%)",
    (mirrorPercent) => {
      const app = envFor("app", "127.0.0.1", ports, { mirrorPercent }, "/tmp/x", "k".repeat(43));
      const metrics = envFor("metrics", "127.0.0.1", ports, { mirrorPercent }, "/tmp/x", "k".repeat(43));
      expect(app.APP_SERVICE_MIRROR_PERCENT).toBe(String(mirrorPercent));
      expect(metrics.METRICS_SERVICE_EXPECTED_MIRROR_PERCENT).toBe(String(mirrorPercent));
      expect(app.APP_SERVICE_FEEDBACK_SECRET).toBe(metrics.METRICS_SERVICE_FEEDBACK_SECRET);
    },
  );

  it("name each candidate by its model for app-service's mirrors and metrics-service's coverage check", () => {
    const options = { candidates: ["shadow", "lite"] as const, mirrorPercent: 50 };
    const app = envFor("app", "127.0.0.1", ports, options, "/tmp/x", "k".repeat(43));
    const metrics = envFor("metrics", "127.0.0.1", ports, options, "/tmp/x", "k".repeat(43));
    const lite = envFor("lite", "127.0.0.1", ports, options, "/tmp/x", "k".repeat(43));
    expect(app.APP_SERVICE_SHADOWS).toBe("spam-v2=127.0.0.1:5,spam-lite=127.0.0.1:9");
    expect(metrics.METRICS_SERVICE_EXPECTED_MIRROR_PERCENTS).toBe("spam-v2=50,spam-lite=50");
    expect(lite.MODEL_SERVICE_ROLE).toBe("SHADOW");
    expect(lite.MODEL_SERVICE_GRPC_PORT).toBe("9");
    expect(lite.MODEL_SERVICE_METRICS_PORT).toBe("10");
    expect(lite.MODEL_SERVICE_MODEL_DIR).toMatch(/models\/spam-lite$/);
    // A mesh of one candidate (the tests' default) mirrors to spam-v2 alone.
    expect(envFor("app", "127.0.0.1", ports, {}, "/tmp/x", "k".repeat(43)).APP_SERVICE_SHADOWS).toBe(
      "spam-v2=127.0.0.1:5",
    );
  });
});
