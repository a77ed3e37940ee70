import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FEEDBACK_SECRET_FILE, feedbackSecret } from "./mesh.js";

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
