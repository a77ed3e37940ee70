import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// The launcher's own types (a project reference to scripts/): a change to startMesh breaks this file's typecheck.
import type { Mesh } from "../../../../scripts/lib/mesh.js";

/**
 * End to end in a real browser: Debian's chromium, driven by playwright-core, against the real local mesh (the five
 * built services as child processes on free ports, as `npm start` runs them, with 100 % mirroring to both
 * candidates). It classifies a spam and a ham example on the Classify page, sends feedback, opens the Shadow page's
 * overview, waits for both candidates to count the pairs, clicks through to one candidate's report and opens the
 * other's by its URL. Screenshots of each page (wide and narrow) go to .test-output/e2e/.
 *
 * Needs: `npx tsc -b` (services) and `npm run build -w web` (web/dist), and serves the bundled models in
 * models/spam-v1 (primary), models/spam-v2 and models/spam-lite (the candidates).
 */

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const OUTPUT = path.join(ROOT, ".test-output", "e2e");
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let work: string;
let mesh: Mesh | undefined;
let context: BrowserContext | undefined;
let page: Page;
let baseUrl: string;
const consoleProblems: string[] = [];
const serviceProblems: string[] = [];

beforeAll(async () => {
  expect(
    existsSync(path.join(ROOT, "services/app-service/dist/main.js")),
    "services are not built: run npx tsc -b",
  ).toBe(true);
  for (const name of ["spam-v1", "spam-v2"]) {
    expect(existsSync(path.join(ROOT, "models", name, "model.json")), `models/${name} is missing`).toBe(true);
  }
  if (!existsSync(path.join(ROOT, "web/dist/index.html"))) {
    // A fresh clone has no web build yet; `npm run build` makes one, and so does this test when it is missing.
    await run("npm", ["run", "build", "-w", "web"], { cwd: ROOT });
  }
  mkdirSync(OUTPUT, { recursive: true });
  work = mkdtempSync(path.join(tmpdir(), "shadowmesh-e2e-"));
  const env: Record<string, string> = { MODEL_SERVICE_LOG_LEVEL: "warn", APP_SERVICE_LOG_LEVEL: "warn" };
  // Imported at run time from the repository (it lives outside this workspace), typed by the module itself.
  const { startMesh }: typeof import("../../../../scripts/lib/mesh.js") = await import(
    pathToFileURL(path.join(ROOT, "scripts/lib/mesh.ts")).href
  );
  mesh = await startMesh({
    ports: "free",
    dataDir: path.join(work, "data"),
    logDir: path.join(work, "logs"),
    mirrorPercent: 100,
    // Both candidates (spam-v2 and spam-lite), so the Shadow page's overview has two cards side by side.
    candidates: ["shadow", "lite"],
    env,
    onLogLine: (service, line) => serviceProblems.push(`[${service}] ${line}`),
    readyTimeoutMs: 60_000,
  });
  baseUrl = `http://127.0.0.1:${mesh.ports.app}`;
  context = await chromium.launchPersistentContext(path.join(work, "profile"), {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    viewport: { width: 1100, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (message) => {
    if (message.type() === "error" || message.type() === "warning") {
      consoleProblems.push(`${message.type()}: ${message.text()}`);
    }
  });
  page.on("pageerror", (error) => consoleProblems.push(`pageerror: ${error.message}`));
}, 180_000);

afterAll(async () => {
  await context?.close();
  await mesh?.stop(9000);
  if (work) {
    rmSync(work, { recursive: true, force: true });
  }
  if (serviceProblems.length > 0) {
    console.warn(
      `browser e2e: services logged warnings or errors:\n${serviceProblems.slice(0, 20).join("\n")}`,
    );
  }
}, 60_000);

/**
 * Clicks an example and Classify, and reads the result. After an earlier call it waits for a result with a
 * different request id (the join key changes with every call), so it never reads the previous answer.
 */
async function classifyExample(title: string | RegExp, previousRequestId?: string) {
  await page.getByRole("button", { name: title }).click();
  await page.getByRole("button", { name: "Classify", exact: true }).click();
  const requestIdCode = page.getByRole("region", { name: "Result" }).locator("code").first();
  await (previousRequestId === undefined
    ? requestIdCode
    : requestIdCode.filter({ hasNotText: previousRequestId })
  ).waitFor({ timeout: 30_000 });
  const label = (await page.getByTestId("predicted-label").textContent()) ?? "";
  const requestId = (await requestIdCode.textContent()) ?? "";
  return { label, requestId };
}

describe("the web app in a real browser against the local mesh", () => {
  it("classifies a spam and a ham example and records feedback", async () => {
    await page.goto(`${baseUrl}/`);
    await page.getByRole("heading", { name: "Classify a message" }).waitFor();

    const feedbackBodies: string[] = [];
    page.on("request", (request) => {
      if (request.url().endsWith("/shadowmesh.metrics.v1.MetricsService/SubmitFeedback")) {
        feedbackBodies.push(request.postData() ?? "");
      }
    });
    const spam = await classifyExample(/Prize winner/);
    expect(spam.label).toBe("Spam");
    // The join key app-service made: a UUIDv7.
    expect(spam.requestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await page.getByRole("button", { name: "Correct" }).click();
    await page.getByText("Thank you: recorded that the right label is spam.").waitFor();
    // The feedback carried the token that came with the prediction.
    expect(feedbackBodies).toHaveLength(1);
    expect(JSON.parse(feedbackBodies[0] ?? "{}")).toMatchObject({
      requestId: spam.requestId,
      label: "spam",
      feedbackToken: expect.stringMatching(/^[\w-]{43}$/),
    });
    await page.screenshot({ path: path.join(OUTPUT, "classify-spam.png"), fullPage: true });

    const ham = await classifyExample(/Meeting notes/, spam.requestId);
    expect(ham.label).toBe("Ham");
    expect(ham.requestId).not.toBe(spam.requestId);
    await page.getByRole("button", { name: "Wrong" }).click();
    await page.getByText("Thank you: recorded that the right label is spam.").waitFor();
    await page.screenshot({ path: path.join(OUTPUT, "classify-ham.png"), fullPage: true });
  }, 120_000);

  it("shows every candidate side by side, and each one's live comparison one click (or one URL) away", async () => {
    await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Shadow" }).click();
    await page.getByRole("heading", { name: "Shadow comparison", exact: true }).waitFor();
    // Both requests were mirrored to both candidates; once everyone has reported, each card counts 2 pairs.
    for (const candidate of ["spam-v2", "spam-lite"]) {
      const card = page.getByRole("article", { name: `Candidate ${candidate}`, exact: true });
      await card.getByTestId("candidate-pairs-value").filter({ hasText: /^2$/ }).waitFor({ timeout: 60_000 });
      await card.getByTestId("candidate-verdict").waitFor();
    }
    await page.screenshot({ path: path.join(OUTPUT, "shadow-overview.png"), fullPage: true });

    const card = page.getByRole("article", { name: "Candidate spam-v2", exact: true });
    await card.getByRole("link", { name: "spam-v2", exact: true }).click();
    await page.getByRole("heading", { level: 1, name: "Shadow comparison: spam-v2" }).waitFor();
    expect(new URL(page.url()).hash).toBe("#/shadow/spam-v2");
    await page.getByText(/of 2 pairs got the same label/).waitFor({ timeout: 60_000 });
    await page.getByRole("region", { name: /Verdict/ }).waitFor();
    await page.screenshot({ path: path.join(OUTPUT, "shadow.png"), fullPage: true });

    // Back to the overview, then straight to the other candidate by its URL.
    await page.goBack();
    await page.getByRole("article", { name: "Candidate spam-lite", exact: true }).waitFor();
    await page.goto(`${baseUrl}/#/shadow/spam-lite`);
    await page.getByRole("heading", { level: 1, name: "Shadow comparison: spam-lite" }).waitFor();
    await page.getByText(/of 2 pairs got the same label/).waitFor({ timeout: 60_000 });

    await page.setViewportSize({ width: 380, height: 800 });
    await page.screenshot({ path: path.join(OUTPUT, "shadow-narrow.png"), fullPage: true });
    await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Classify" }).click();
    await page.getByRole("heading", { name: "Classify a message" }).waitFor();
    await page.screenshot({ path: path.join(OUTPUT, "classify-narrow.png"), fullPage: true });
  }, 120_000);

  it("logged no console errors or warnings (CSP violations included)", () => {
    expect(consoleProblems).toEqual([]);
  });
});
