import { Code, ConnectError } from "@connectrpc/connect";
import type { LoadedModelInfo } from "./model.js";
import type { ModelManager } from "./model-manager.js";

/** The prediction for one text, with the model and run that produced it. */
export interface ItemResult {
  label: string;
  /** The probability of each of `model.labels`. */
  probabilities: Float32Array;
  model: LoadedModelInfo;
  /** Time of the inference run this text was part of, in ms. */
  inferenceMs: number;
  /** How many texts that run classified. */
  batchSize: number;
}

export interface BatcherOptions {
  /** Coalesce concurrent calls; false runs every call as a batch of one, at once. */
  enabled: boolean;
  /** Most texts in one inference run. */
  maxBatchSize: number;
  /** Longest the first queued call waits for others to join, in µs; 0 = only what has already arrived. */
  maxWaitUs: number;
}

export interface BatchObserver {
  /** One inference run finished. */
  ran(model: LoadedModelInfo, size: number, seconds: number): void;
  /** A call's inference run starts, `seconds` after the call was received (see `submit`'s `receivedAt`). */
  waited?(seconds: number): void;
}

interface Pending {
  text: string;
  receivedAt: bigint | undefined;
  deadline: number | undefined;
  signal: AbortSignal | undefined;
  resolve(result: ItemResult): void;
  reject(error: unknown): void;
}

function unavailable(): ConnectError {
  return new ConnectError("no model is loaded yet", Code.Unavailable);
}

/**
 * Dynamic batching (like Triton's): concurrent Predict calls are queued and coalesced into one inference run of
 * up to `maxBatchSize` texts. A batch is dispatched once it is full, once the oldest call has waited `maxWaitUs`
 * (0: at the end of the current event-loop turn, so every call that has already arrived rides along), or, while a
 * run is in progress, as soon as it ends. Only one run is in progress at a time; calls that arrive meanwhile form
 * the next batch, which is where the throughput at high concurrency comes from. A call whose deadline passes or
 * which is cancelled while queued is not run.
 */
export class Batcher {
  readonly #queue: Pending[] = [];
  #running = false;
  #scheduled = false;
  #firstQueuedAt = 0;

  constructor(
    private readonly models: ModelManager,
    private readonly options: BatcherOptions,
    private readonly observer?: BatchObserver,
  ) {}

  /** Number of calls waiting for a run. */
  get queued(): number {
    return this.#queue.length;
  }

  /**
   * Classifies one text, batched with concurrent calls. `deadline` is ms since the epoch; `receivedAt`
   * (process.hrtime.bigint()) is when the call was received, for the observer's `waited`.
   */
  submit(text: string, deadline?: number, signal?: AbortSignal, receivedAt?: bigint): Promise<ItemResult> {
    if (!this.options.enabled) {
      return this.runNow([text], receivedAt).then((results) => results[0] as ItemResult);
    }
    return new Promise<ItemResult>((resolve, reject) => {
      this.#queue.push({ text, receivedAt, deadline, signal, resolve, reject });
      if (this.#queue.length === 1) {
        this.#firstQueuedAt = performance.now();
      }
      if (!this.#running && !this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#check);
      }
    });
  }

  /**
   * Classifies many texts (a PredictBatch call) as one batch of its own, split into runs of at most
   * `maxBatchSize`; results are in the order of `texts`.
   */
  async runNow(texts: string[], receivedAt?: bigint): Promise<ItemResult[]> {
    this.#waited(receivedAt);
    const results: ItemResult[] = [];
    for (let start = 0; start < texts.length; start += this.options.maxBatchSize) {
      results.push(...(await this.#run(texts.slice(start, start + this.options.maxBatchSize))));
    }
    return results;
  }

  readonly #check = (): void => {
    this.#scheduled = false;
    if (this.#running || this.#queue.length === 0) {
      return;
    }
    const waitedUs = (performance.now() - this.#firstQueuedAt) * 1000;
    if (this.#queue.length >= this.options.maxBatchSize || waitedUs >= this.options.maxWaitUs) {
      this.#dispatch();
    } else {
      // Poll once per event-loop turn, so calls that arrive meanwhile are received and join the batch.
      this.#scheduled = true;
      setImmediate(this.#check);
    }
  };

  #dispatch(): void {
    const batch: Pending[] = [];
    const now = Date.now();
    while (batch.length < this.options.maxBatchSize && this.#queue.length > 0) {
      const item = this.#queue.shift() as Pending;
      if (item.signal?.aborted) {
        item.reject(ConnectError.from(item.signal.reason ?? "cancelled", Code.Canceled));
      } else if (item.deadline !== undefined && item.deadline <= now) {
        item.reject(new ConnectError("the deadline passed while the call was queued", Code.DeadlineExceeded));
      } else {
        batch.push(item);
      }
    }
    if (this.#queue.length > 0) {
      this.#firstQueuedAt = performance.now();
    }
    if (batch.length === 0) {
      this.#next();
      return;
    }
    for (const item of batch) {
      this.#waited(item.receivedAt);
    }
    this.#running = true;
    this.#run(batch.map((item) => item.text)).then(
      (results) => {
        for (let i = 0; i < batch.length; i++) {
          (batch[i] as Pending).resolve(results[i] as ItemResult);
        }
        this.#running = false;
        this.#next();
      },
      (error: unknown) => {
        for (const item of batch) {
          item.reject(error);
        }
        this.#running = false;
        this.#next();
      },
    );
  }

  #waited(receivedAt: bigint | undefined): void {
    if (receivedAt !== undefined && this.observer?.waited) {
      this.observer.waited(Number(process.hrtime.bigint() - receivedAt) / 1e9);
    }
  }

  #next(): void {
    if (this.#queue.length === 0 || this.#scheduled) {
      return;
    }
    if (this.#queue.length >= this.options.maxBatchSize || this.options.maxWaitUs === 0) {
      // Calls that queued up during the run go at once: waiting would only add latency.
      this.#dispatch();
    } else {
      this.#scheduled = true;
      setImmediate(this.#check);
    }
  }

  async #run(texts: string[]): Promise<ItemResult[]> {
    const lease = this.models.lease();
    if (!lease) {
      throw unavailable();
    }
    try {
      const model = lease.model;
      const output = await model.classify(texts);
      const width = model.info.labels.length;
      this.observer?.ran(model.info, texts.length, output.inferenceMs / 1000);
      const results: ItemResult[] = new Array(texts.length);
      for (let i = 0; i < texts.length; i++) {
        results[i] = {
          label: output.labels[i] as string,
          probabilities: output.probabilities.subarray(i * width, i * width + width),
          model: model.info,
          inferenceMs: output.inferenceMs,
          batchSize: texts.length,
        };
      }
      return results;
    } finally {
      lease.release();
    }
  }
}
