import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Batcher, type BatcherOptions } from "./batcher.js";
import { ModelManager } from "./model-manager.js";
import { deferred, FakeClassifier, quietLogger } from "./testing/helpers.js";

async function setup(options: Partial<BatcherOptions> = {}) {
  const model = new FakeClassifier();
  const models = new ModelManager("/nowhere", async () => model, quietLogger());
  await models.start();
  const sizes: number[] = [];
  const batcher = new Batcher(
    models,
    { enabled: true, maxBatchSize: 64, maxWaitUs: 0, ...options },
    { ran: (_model, size) => sizes.push(size) },
  );
  return { model, models, batcher, sizes };
}

const texts = (n: number) => Array.from({ length: n }, (_, i) => (i % 2 ? `free offer ${i}` : `hello ${i}`));

describe("Batcher", () => {
  it("coalesces concurrent calls into one inference run and answers each with its own row", async () => {
    const { model, batcher } = await setup();
    const results = await Promise.all(texts(10).map((text) => batcher.submit(text)));
    expect(model.runs).toHaveLength(1);
    expect(model.runs[0]).toEqual(texts(10));
    expect(results.map((r) => r.label)).toEqual(texts(10).map((_, i) => (i % 2 ? "spam" : "ham")));
    expect(results[1]?.probabilities[1]).toBeCloseTo(0.9);
    expect(results.every((r) => r.batchSize === 10)).toBe(true);
  });

  it("never runs more than the maximum batch size at once", async () => {
    const { model, batcher, sizes } = await setup({ maxBatchSize: 4 });
    await Promise.all(texts(10).map((text) => batcher.submit(text)));
    expect(sizes).toEqual([4, 4, 2]);
    expect(model.runs.flat()).toEqual(texts(10));
  });

  it("runs every call as a batch of one when batching is off", async () => {
    const { model, batcher } = await setup({ enabled: false });
    await Promise.all(texts(5).map((text) => batcher.submit(text)));
    expect(model.runs.map((run) => run.length)).toEqual([1, 1, 1, 1, 1]);
  });

  it("collects the calls that arrive during a run into the next batch", async () => {
    const { model, batcher } = await setup();
    const gate = deferred();
    model.gate = gate.promise;
    const first = batcher.submit("first");
    await new Promise((resolve) => setImmediate(resolve));
    expect(model.runs).toHaveLength(1);
    const rest = texts(6).map((text) => batcher.submit(text));
    expect(batcher.queued).toBe(6);
    model.gate = undefined;
    gate.resolve();
    await Promise.all([first, ...rest]);
    expect(model.runs.map((run) => run.length)).toEqual([1, 6]);
  });

  it("waits up to the maximum wait for more calls when asked to", async () => {
    const { model, batcher } = await setup({ maxWaitUs: 1_000_000, maxBatchSize: 2 });
    const first = batcher.submit("first");
    await new Promise((resolve) => setTimeout(resolve, 5));
    const second = batcher.submit("second");
    await Promise.all([first, second]);
    expect(model.runs).toEqual([["first", "second"]]);
  });

  it("does not run a call whose deadline passed while it was queued", async () => {
    const { model, batcher } = await setup();
    const gate = deferred();
    model.gate = gate.promise;
    const blocker = batcher.submit("blocker");
    await new Promise((resolve) => setImmediate(resolve));
    const expired = batcher.submit("too late", Date.now() + 5);
    const fine = batcher.submit("fine", Date.now() + 60_000);
    await new Promise((resolve) => setTimeout(resolve, 20));
    model.gate = undefined;
    gate.resolve();
    await blocker;
    await expect(expired).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    await expect(fine).resolves.toMatchObject({ label: "ham" });
    expect(model.runs.flat()).not.toContain("too late");
  });

  it("runs a PredictBatch as its own batch, split into runs of the maximum size, in order", async () => {
    const { model, batcher } = await setup({ maxBatchSize: 3 });
    const results = await batcher.runNow(texts(7));
    expect(model.runs.map((run) => run.length)).toEqual([3, 3, 1]);
    expect(results.map((r) => r.label)).toEqual(texts(7).map((_, i) => (i % 2 ? "spam" : "ham")));
  });

  it("fails every call of a run that fails, and keeps serving the next ones", async () => {
    const { model, batcher } = await setup();
    const original = model.classify.bind(model);
    model.classify = async () => {
      throw new ConnectError("boom", Code.Internal);
    };
    await expect(Promise.all([batcher.submit("a"), batcher.submit("b")])).rejects.toMatchObject({
      code: Code.Internal,
    });
    model.classify = original;
    await expect(batcher.submit("free")).resolves.toMatchObject({ label: "spam" });
  });
});
