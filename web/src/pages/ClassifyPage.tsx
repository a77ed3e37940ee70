import type { Prediction } from "@shadowmesh/gen/shadowmesh/predict/v1/predict_service_pb.js";
import { createSignal, For, onMount, Show } from "solid-js";
import { useClients } from "../clients";
import { ProbabilityBar } from "../components/ProbabilityBar";
import { describeFeedbackError, describePredictError } from "../lib/errors";
import { EXAMPLES } from "../lib/examples";
import { labelName, ms } from "../lib/format";

/** The longest text we let the user send when the model does not tell us its limit. */
const DEFAULT_MAX_CHARS = 20_000;

interface Result {
  prediction: Prediction;
  /** The round trip as the browser saw it. */
  roundTripMs: number;
}

type FeedbackState =
  | { kind: "idle" }
  | { kind: "sending" }
  | { kind: "sent"; label: string }
  | { kind: "failed"; message: string };

/**
 * Classify a message: paste one or pick an example, see the label, the probability of each label, the model, the
 * latency and the request id, and say whether the answer was right (feedback goes to the shadow comparison).
 */
export function ClassifyPage() {
  const { predict, metrics } = useClients();
  const [text, setText] = createSignal("");
  const [busy, setBusy] = createSignal(false);
  const [result, setResult] = createSignal<Result>();
  const [error, setError] = createSignal<string>();
  const [feedback, setFeedback] = createSignal<FeedbackState>({ kind: "idle" });
  const [labels, setLabels] = createSignal<string[]>(["ham", "spam"]);
  const [maxChars, setMaxChars] = createSignal(DEFAULT_MAX_CHARS);
  const [model, setModel] = createSignal<string>();

  onMount(() => {
    // The model's labels and input limit; the page works with the defaults if this fails.
    predict.getModel({}).then(
      (response) => {
        const info = response.model;
        if (info) {
          if (info.labels.length > 0) {
            setLabels(info.labels);
          }
          if (info.maxTextChars > 0) {
            setMaxChars(info.maxTextChars);
          }
          setModel(`${info.name} ${info.version}`);
        }
      },
      () => undefined,
    );
  });

  const tooLong = () => text().length > maxChars();
  const canSubmit = () => text().trim().length > 0 && !busy() && !tooLong();

  const classify = async () => {
    if (!canSubmit()) {
      return;
    }
    setBusy(true);
    setError(undefined);
    setFeedback({ kind: "idle" });
    const started = performance.now();
    try {
      const response = await predict.predict({ text: text() });
      if (!response.prediction) {
        throw new Error("empty response");
      }
      setResult({ prediction: response.prediction, roundTripMs: performance.now() - started });
    } catch (caught) {
      setResult(undefined);
      setError(describePredictError(caught));
    } finally {
      setBusy(false);
    }
  };

  const sendFeedback = async (correct: boolean) => {
    const current = result();
    if (!current) {
      return;
    }
    const predicted = current.prediction.label;
    const label = correct ? predicted : (labels().find((candidate) => candidate !== predicted) ?? predicted);
    setFeedback({ kind: "sending" });
    try {
      // The token came with the prediction: it proves to metrics-service that this browser got this answer.
      await metrics.submitFeedback({
        requestId: current.prediction.requestId,
        batchIndex: 0,
        label,
        feedbackToken: current.prediction.feedbackToken,
      });
      setFeedback({ kind: "sent", label });
    } catch (caught) {
      setFeedback({ kind: "failed", message: describeFeedbackError(caught) });
    }
  };

  return (
    <section aria-labelledby="classify-heading" class="page">
      <h1 id="classify-heading">Classify a message</h1>
      <p class="lead">
        Paste an e-mail or pick an example. The primary model answers; in the background the shadow model gets
        the same message, and the <a href="#/shadow">Shadow</a> page compares the two.
      </p>

      <fieldset class="examples">
        <legend>Examples</legend>
        <div class="example-list">
          <For each={EXAMPLES}>
            {(example) => (
              <button
                type="button"
                class={`example example-${example.kind}`}
                onClick={() => {
                  setText(example.text);
                  setError(undefined);
                }}
              >
                <span class="example-kind">{example.kind}</span> {example.title}
              </button>
            )}
          </For>
        </div>
      </fieldset>

      <form
        class="classify-form"
        onSubmit={(event) => {
          event.preventDefault();
          void classify();
        }}
      >
        <label for="message">Message</label>
        <textarea
          id="message"
          name="message"
          rows={9}
          value={text()}
          aria-describedby="message-help"
          aria-invalid={tooLong()}
          onInput={(event) => setText(event.currentTarget.value)}
          onKeyDown={(event) => {
            if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
              event.preventDefault();
              void classify();
            }
          }}
        />
        <p id="message-help" class={tooLong() ? "help help-error" : "help"}>
          <Show
            when={tooLong()}
            fallback={
              <>
                {text().length.toLocaleString("en-US")} / {maxChars().toLocaleString("en-US")} characters ·
                Ctrl+Enter to classify
              </>
            }
          >
            The text is too long: the model accepts at most {maxChars().toLocaleString("en-US")} characters
            (this one has {text().length.toLocaleString("en-US")}).
          </Show>
        </p>
        <div class="actions">
          <button type="submit" class="primary" disabled={!canSubmit()}>
            {busy() ? "Classifying…" : "Classify"}
          </button>
          <Show when={model()}>
            <span class="muted">Primary model: {model()}</span>
          </Show>
        </div>
      </form>

      <Show when={error()}>
        <p role="alert" class="error">
          {error()}
        </p>
      </Show>

      <Show when={result()}>
        {(current) => (
          <section class="card result" aria-labelledby="result-heading" aria-live="polite">
            <h2 id="result-heading">Result</h2>
            <p class={`verdict-label label-${current().prediction.label}`} data-testid="predicted-label">
              {labelName(current().prediction.label)}
            </p>
            <For each={current().prediction.scores}>
              {(score) => <ProbabilityBar label={score.label} probability={score.probability} />}
            </For>
            <dl class="facts">
              <div>
                <dt>Model</dt>
                <dd>
                  {current().prediction.modelName} {current().prediction.modelVersion}
                </dd>
              </div>
              <div>
                <dt>Latency</dt>
                <dd>
                  {ms(current().roundTripMs)} round trip · {ms(current().prediction.inferenceMs)} inference
                </dd>
              </div>
              <div>
                <dt>Request id</dt>
                <dd>
                  <code>{current().prediction.requestId}</code>
                </dd>
              </div>
            </dl>
            <fieldset class="feedback">
              <legend>Was this right?</legend>
              <button
                type="button"
                onClick={() => void sendFeedback(true)}
                disabled={feedback().kind === "sending" || feedback().kind === "sent"}
              >
                Correct
              </button>
              <button
                type="button"
                onClick={() => void sendFeedback(false)}
                disabled={feedback().kind === "sending" || feedback().kind === "sent"}
              >
                Wrong
              </button>
            </fieldset>
            <FeedbackStatus state={feedback()} />
          </section>
        )}
      </Show>
    </section>
  );
}

function FeedbackStatus(props: { state: FeedbackState }) {
  return (
    <p class="feedback-status" role="status">
      {(() => {
        const state = props.state;
        switch (state.kind) {
          case "sending":
            return "Sending your feedback…";
          case "sent":
            return `Thank you: recorded that the right label is ${state.label}.`;
          case "failed":
            return state.message;
          default:
            return "";
        }
      })()}
    </p>
  );
}
