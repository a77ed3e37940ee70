// The helm the chart checks use is the real, verified v3.17.3, and ensureHelm() is idempotent and notices a
// tampered binary. The tampering happens on a second copy in .test-output/, never on the one other tests use.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ensureHelm, HELM_SHA256, REPO_ROOT } from "./helm.js";

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const SCRATCH = join(REPO_ROOT, ".test-output", `helm-${process.pid}`);

afterAll(() => {
  rmSync(SCRATCH, { recursive: true, force: true });
});

describe("ensureHelm", () => {
  it("gives the official helm v3.17.3 with the pinned sha256", async () => {
    const helm = await ensureHelm();
    expect(sha256(helm)).toBe(HELM_SHA256);
    const version = execFileSync(helm, ["version", "--template", "{{ .Version }} {{ .GitTreeState }}"], {
      encoding: "utf8",
      env: { HOME: SCRATCH, PATH: process.env.PATH ?? "" },
    });
    expect(version).toBe("v3.17.3 clean");
  });

  it("leaves a verified binary alone and replaces a tampered one", async () => {
    // A verified copy in a scratch dir: the binary plus the stamp ensureHelm writes after checking the hash.
    const real = await ensureHelm();
    const helm = join(SCRATCH, "helm");
    mkdirSync(SCRATCH, { recursive: true });
    copyFileSync(real, helm);
    const st = statSync(helm);
    const stamp = join(SCRATCH, "helm.verified.json");
    writeFileSync(stamp, JSON.stringify({ sha256: HELM_SHA256, size: st.size, mtimeMs: st.mtimeMs }));

    expect(await ensureHelm({ dir: SCRATCH })).toBe(helm);
    expect(statSync(helm).mtimeMs).toBe(st.mtimeMs);

    // Same size, other bytes, newer mtime: the stamp no longer vouches for it, so it is extracted and checked again.
    const bytes = readFileSync(helm);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    writeFileSync(helm, bytes);
    expect(sha256(helm)).not.toBe(HELM_SHA256);
    expect(await ensureHelm({ dir: SCRATCH })).toBe(helm);
    expect(sha256(helm)).toBe(HELM_SHA256);
    expect(JSON.parse(readFileSync(stamp, "utf8")).mtimeMs).toBe(statSync(helm).mtimeMs);
  });
});
