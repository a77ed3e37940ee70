import { Code, ConnectError } from "@connectrpc/connect";
import type { SubmitFeedbackRequest } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { fireEvent, render, screen } from "@solidjs/testing-library";
import { describe, expect, it } from "vitest";
import { EXAMPLES } from "../lib/examples";
import { type FakeApi, withApi } from "../testing";
import { ClassifyPage } from "./ClassifyPage";

const model = {
  getModel: () => ({
    model: { name: "spam-v1", version: "1.0.0", labels: ["ham", "spam"], maxTextChars: 300 },
  }),
};

function spamPredictor(requestId = "req-42", feedbackToken = `token-for-${requestId}`): FakeApi["predict"] {
  return {
    ...model,
    predict: (request) => {
      const spam = /WON|FREE|viagra|\$/i.test(request.text) ? 0.97 : 0.04;
      return {
        prediction: {
          label: spam > 0.5 ? "spam" : "ham",
          scores: [
            { label: "ham", probability: 1 - spam },
            { label: "spam", probability: spam },
          ],
          modelName: "spam-v1",
          modelVersion: "1.0.0",
          requestId,
          inferenceMs: 0.42,
          feedbackToken,
        },
      };
    },
  };
}

const spamExample = EXAMPLES.find((example) => example.kind === "spam");
const hamExample = EXAMPLES.find((example) => example.kind === "ham");

describe("the Classify page", () => {
  it("classifies a picked spam example and shows label, probabilities, model, latency and request id", async () => {
    render(withApi({ predict: spamPredictor() }, () => <ClassifyPage />));
    fireEvent.click(screen.getByRole("button", { name: new RegExp(spamExample?.title ?? "") }));
    expect(screen.getByLabelText("Message")).toHaveValue(spamExample?.text);
    fireEvent.click(screen.getByRole("button", { name: "Classify" }));
    expect(await screen.findByTestId("predicted-label")).toHaveTextContent("Spam");
    expect(screen.getByRole("meter", { name: "Spam" })).toHaveAttribute("aria-valuenow", "97");
    expect(screen.getByRole("meter", { name: "Ham" })).toHaveAttribute("aria-valuenow", "3");
    expect(screen.getByText("spam-v1 1.0.0")).toBeInTheDocument();
    expect(screen.getByText(/0\.42 ms inference/)).toBeInTheDocument();
    expect(screen.getByText("req-42")).toBeInTheDocument();
  });

  it("classifies a ham example", async () => {
    render(withApi({ predict: spamPredictor() }, () => <ClassifyPage />));
    fireEvent.click(screen.getByRole("button", { name: new RegExp(hamExample?.title ?? "") }));
    fireEvent.click(screen.getByRole("button", { name: "Classify" }));
    expect(await screen.findByTestId("predicted-label")).toHaveTextContent("Ham");
  });

  it("classifies with Ctrl+Enter from the text box", async () => {
    render(withApi({ predict: spamPredictor() }, () => <ClassifyPage />));
    const box = screen.getByLabelText("Message");
    fireEvent.input(box, { target: { value: "You have WON a FREE trip" } });
    fireEvent.keyDown(box, { key: "Enter", ctrlKey: true });
    expect(await screen.findByTestId("predicted-label")).toHaveTextContent("Spam");
  });

  it("does not send an empty message", () => {
    render(withApi({ predict: spamPredictor() }, () => <ClassifyPage />));
    expect(screen.getByRole("button", { name: "Classify" })).toBeDisabled();
    fireEvent.input(screen.getByLabelText("Message"), { target: { value: "   " } });
    expect(screen.getByRole("button", { name: "Classify" })).toBeDisabled();
  });

  it("says when the text is longer than the model accepts, before sending it", async () => {
    render(withApi({ predict: spamPredictor() }, () => <ClassifyPage />));
    // The limit comes from GetModel (300 here).
    await screen.findByText(/Primary model: spam-v1 1\.0\.0/);
    fireEvent.input(screen.getByLabelText("Message"), { target: { value: "x".repeat(301) } });
    expect(
      screen.getByText(/The text is too long: the model accepts at most 300 characters/),
    ).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Classify" })).toBeDisabled();
    expect(screen.getByLabelText("Message")).toHaveAttribute("aria-invalid", "true");
  });

  it("sends 'correct' feedback with the request id, the predicted label and the prediction's feedback token", async () => {
    const received: SubmitFeedbackRequest[] = [];
    render(
      withApi(
        {
          predict: spamPredictor("req-feedback-1"),
          metrics: {
            submitFeedback: (request) => {
              received.push(request);
              return { requestKnown: true };
            },
          },
        },
        () => <ClassifyPage />,
      ),
    );
    fireEvent.input(screen.getByLabelText("Message"), { target: { value: "FREE money" } });
    fireEvent.click(screen.getByRole("button", { name: "Classify" }));
    await screen.findByTestId("predicted-label");
    fireEvent.click(screen.getByRole("button", { name: "Correct" }));
    expect(await screen.findByText("Thank you: recorded that the right label is spam.")).toBeInTheDocument();
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      requestId: "req-feedback-1",
      batchIndex: 0,
      label: "spam",
      feedbackToken: "token-for-req-feedback-1",
    });
    expect(screen.getByRole("button", { name: "Wrong" })).toBeDisabled();
  });

  it("sends 'wrong' feedback with the other label", async () => {
    const received: SubmitFeedbackRequest[] = [];
    render(
      withApi(
        {
          predict: spamPredictor(),
          metrics: {
            submitFeedback: (request) => {
              received.push(request);
              return { requestKnown: true };
            },
          },
        },
        () => <ClassifyPage />,
      ),
    );
    fireEvent.input(screen.getByLabelText("Message"), { target: { value: "see you at lunch" } });
    fireEvent.click(screen.getByRole("button", { name: "Classify" }));
    expect(await screen.findByTestId("predicted-label")).toHaveTextContent("Ham");
    fireEvent.click(screen.getByRole("button", { name: "Wrong" }));
    expect(await screen.findByText("Thank you: recorded that the right label is spam.")).toBeInTheDocument();
    expect(received[0]?.label).toBe("spam");
  });

  it("sends the token of the latest prediction, not an earlier one's", async () => {
    const received: SubmitFeedbackRequest[] = [];
    let call = 0;
    const base = spamPredictor();
    render(
      withApi(
        {
          predict: {
            ...base,
            predict: (request, context) => {
              call++;
              return spamPredictor(`req-${call}`, `token-${call}`)?.predict?.(request, context) as never;
            },
          },
          metrics: {
            submitFeedback: (request) => {
              received.push(request);
              return { requestKnown: true };
            },
          },
        },
        () => <ClassifyPage />,
      ),
    );
    fireEvent.input(screen.getByLabelText("Message"), { target: { value: "FREE money" } });
    fireEvent.click(screen.getByRole("button", { name: "Classify" }));
    expect(await screen.findByText("req-1")).toBeInTheDocument();
    fireEvent.click(screen.getByRole("button", { name: "Classify" }));
    expect(await screen.findByText("req-2")).toBeInTheDocument();
    fireEvent.click(screen.getByRole("button", { name: "Correct" }));
    await screen.findByText("Thank you: recorded that the right label is spam.");
    expect(received).toEqual([expect.objectContaining({ requestId: "req-2", feedbackToken: "token-2" })]);
  });

  it.each([
    [
      new ConnectError("the feedback token does not match this prediction", Code.PermissionDenied),
      /feedback token is not valid/,
    ],
    [new ConnectError("feedback is disabled", Code.FailedPrecondition), /feedback is switched off/],
  ])("explains a refused feedback (%s) in plain words", async (error, message) => {
    render(
      withApi(
        {
          predict: spamPredictor(),
          metrics: {
            submitFeedback: () => {
              throw error;
            },
          },
        },
        () => <ClassifyPage />,
      ),
    );
    fireEvent.input(screen.getByLabelText("Message"), { target: { value: "hello" } });
    fireEvent.click(screen.getByRole("button", { name: "Classify" }));
    await screen.findByTestId("predicted-label");
    fireEvent.click(screen.getByRole("button", { name: "Correct" }));
    expect(await screen.findByText(message)).toBeInTheDocument();
  });

  it("says in plain words when feedback cannot be saved", async () => {
    render(withApi({ predict: spamPredictor() }, () => <ClassifyPage />));
    fireEvent.input(screen.getByLabelText("Message"), { target: { value: "hello" } });
    fireEvent.click(screen.getByRole("button", { name: "Classify" }));
    await screen.findByTestId("predicted-label");
    fireEvent.click(screen.getByRole("button", { name: "Correct" }));
    expect(
      await screen.findByText("Your feedback could not be saved: the comparison service is not available."),
    ).toBeInTheDocument();
  });

  it.each([
    [
      new ConnectError("model-service is unavailable; try again shortly", Code.Unavailable),
      /model is unavailable/,
    ],
    [new ConnectError("model-service did not answer in time", Code.DeadlineExceeded), /took too long/],
    [
      new ConnectError("text has 25000 characters, over the model's limit of 20000", Code.InvalidArgument),
      /The text is too long for the model: text has 25000 characters, over the model's limit of 20000/,
    ],
    [new ConnectError("internal error", Code.Internal), /Something went wrong while classifying/],
  ])("explains %s in plain words", async (error, message) => {
    render(
      withApi(
        {
          predict: {
            ...model,
            predict: () => {
              throw error;
            },
          },
        },
        () => <ClassifyPage />,
      ),
    );
    fireEvent.input(screen.getByLabelText("Message"), { target: { value: "hello" } });
    fireEvent.click(screen.getByRole("button", { name: "Classify" }));
    expect(await screen.findByRole("alert")).toHaveTextContent(message);
    expect(screen.queryByTestId("predicted-label")).toBeNull();
  });
});
