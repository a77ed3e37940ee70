import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "./lib/mesh.js";
import { toolEnv } from "./lib/run.js";

const PYTHON = "/usr/bin/python3"; // Debian's Python: the one with python3-grpcio and python3-grpc-tools.

describe("the contracts", () => {
  const work = mkdtempSync(path.join(os.tmpdir(), "shadowmesh-proto-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("compile with a second toolchain (Python grpc_tools.protoc) and import as Python modules", () => {
    const out = path.join(work, "py");
    cpSync(path.join(ROOT, "proto"), path.join(work, "proto"), { recursive: true });
    spawnSync("mkdir", ["-p", out]);
    const protos = [
      "shadowmesh/predict/v1/predict_service.proto",
      "shadowmesh/metrics/v1/metrics_service.proto",
      "grpc/health/v1/health.proto",
    ];
    const compiled = spawnSync(
      PYTHON,
      ["-m", "grpc_tools.protoc", "-Iproto", `--python_out=${out}`, `--grpc_python_out=${out}`, ...protos],
      { cwd: work, encoding: "utf8" },
    );
    expect(compiled.stderr).toBe("");
    expect(compiled.status).toBe(0);
    const script = [
      "import sys",
      `sys.path.insert(0, ${JSON.stringify(out)})`,
      "from shadowmesh.predict.v1 import predict_service_pb2 as p, predict_service_pb2_grpc as pg",
      "from shadowmesh.metrics.v1 import metrics_service_pb2 as m, metrics_service_pb2_grpc as mg",
      "r = m.PredictionRecord(request_id='r1', role=m.ROLE_SHADOW, label='spam')",
      "r2 = m.PredictionRecord.FromString(r.SerializeToString())",
      "assert r2.role == m.ROLE_SHADOW and r2.label == 'spam'",
      "assert hasattr(pg, 'PredictServiceStub') and hasattr(mg, 'MetricsServiceStub')",
      "print(p.DESCRIPTOR.services_by_name['PredictService'].full_name)",
    ].join("\n");
    writeFileSync(path.join(work, "check.py"), script);
    const imported = spawnSync(PYTHON, ["check.py"], { cwd: work, encoding: "utf8" });
    expect(imported.stderr).toBe("");
    expect(imported.stdout.trim()).toBe("shadowmesh.predict.v1.PredictService");
  });

  it("fail the drift check when the committed generated code differs from a fresh generation", () => {
    // Copy the repository's contract inputs into a scratch repo, corrupt one generated file, run the real check.
    const repo = path.join(work, "repo");
    for (const entry of ["proto", "gen", "buf.yaml", "buf.gen.yaml", "scripts"]) {
      cpSync(path.join(ROOT, entry), path.join(repo, entry), { recursive: true });
    }
    const file = path.join(repo, "gen/es/shadowmesh/predict/v1/predict_service_pb.d.ts");
    writeFileSync(file, "// edited by hand\n", { flag: "a" });
    const result = spawnSync(
      path.join(ROOT, "node_modules/.bin/tsx"),
      [path.join(repo, "scripts/proto-check.ts")],
      { cwd: repo, env: { ...toolEnv, NODE_PATH: path.join(ROOT, "node_modules") }, encoding: "utf8" },
    );
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain("differs: gen/es/shadowmesh/predict/v1/predict_service_pb.d.ts");
    expect(readdirSync(path.join(repo, "gen/es"))).toContain("shadowmesh");
  });
});
