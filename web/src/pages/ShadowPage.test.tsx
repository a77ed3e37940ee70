import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  Decision,
  ShadowReportSchema,
  type WatchShadowReportRequest,
} from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { render, screen, within } from "@solidjs/testing-library";
import { describe, expect, it, vi } from "vitest";
import { controlledStream, fullReport } from "../shadow/testing";
import { withApi } from "../testing";
import { ShadowPage } from "./ShadowPage";

const WAIT = { timeout: 4000, interval: 5 };

describe("the Shadow overview (#/shadow)", () => {
  it("says honestly that there is no comparison data while metrics-service does not implement the calls", async () => {
    render(withApi({ metrics: {} }, () => <ShadowPage retryDelayMs={() => 60_000} />));
    expect(await screen.findByRole("heading", { name: "No comparison data" })).toBeInTheDocument();
    expect(screen.getByText(/does not produce reports yet/)).toBeInTheDocument();
    expect(screen.queryByText(/Verdict/)).toBeNull();
  });

  it("says so when metrics-service is unreachable", async () => {
    render(
      withApi(
        {
          metrics: {
            listCandidates() {
              throw new ConnectError("metrics-service is unavailable; try again shortly", Code.Unavailable);
            },
          },
        },
        () => <ShadowPage retryDelayMs={() => 60_000} />,
      ),
    );
    expect(await screen.findByText(/is not reachable/)).toBeInTheDocument();
  });

  it("shows a clear empty state when no candidate reported in the window", async () => {
    render(withApi({ metrics: { listCandidates: () => ({ candidates: [] }) } }, () => <ShadowPage />));
    expect(await screen.findByRole("heading", { name: "No candidates yet" })).toBeInTheDocument();
    expect(screen.queryByTestId("candidate-card")).toBeNull();
    expect(screen.getByRole("status")).toHaveTextContent(/Live/);
  });

  it("shows two candidates side by side, each linking to its own report", async () => {
    const tiny = fullReport(30, "spam-tiny");
    tiny.verdict = {
      ...tiny.verdict,
      decision: Decision.ROLLBACK,
      reasons: [],
      checks: [],
      $typeName: "shadowmesh.metrics.v1.Verdict",
    };
    tiny.agreement = {
      ...tiny.agreement,
      rate: 0.7,
      lowerBound: 0.52,
      upperBound: 0.83,
      pairCount: 30n,
      agreeingCount: 21n,
      $typeName: "shadowmesh.metrics.v1.Agreement",
    };
    tiny.latencyP99Ratio = 0.41;
    render(
      withApi(
        { metrics: { listCandidates: () => ({ candidates: [tiny, fullReport(40, "spam-v2")] }) } },
        () => <ShadowPage />,
      ),
    );
    const list = await screen.findByRole("list", { name: "Candidates" });
    const cards = within(list).getAllByTestId("candidate-card");
    expect(cards.map((card) => card.dataset.candidate)).toEqual(["spam-tiny", "spam-v2"]);
    expect(screen.getByTestId("primary-models")).toHaveTextContent("Primary: spam-v1 1.0.0 · 2 candidates");

    const v2 = within(screen.getByRole("article", { name: "Candidate spam-v2" }));
    expect(v2.getByRole("link", { name: "spam-v2" })).toHaveAttribute("href", "#/shadow/spam-v2");
    expect(v2.getByTestId("candidate-verdict")).toHaveTextContent("Verdict: Hold");
    expect(v2.getByTestId("candidate-agreement")).toHaveTextContent(
      /92\.5 %.*95 % interval 80\.1 % – 97\.4 %/,
    );
    expect(v2.getByTestId("candidate-pairs")).toHaveTextContent(/^Pairs40/);
    expect(v2.getByTestId("candidate-pairs-value")).toHaveTextContent(/^40$/);
    expect(v2.getByTestId("candidate-agreement-value")).toHaveTextContent(/^92\.5 %$/);
    expect(v2.getByTestId("candidate-latency-ratio")).toHaveTextContent("1.19×");
    expect(v2.getByTestId("candidate-accuracy")).toHaveTextContent(
      /100\.0 %primary 75\.0 %; 4 and 4 answers with feedback/,
    );

    const small = within(screen.getByRole("article", { name: "Candidate spam-tiny" }));
    expect(small.getByRole("link", { name: "spam-tiny" })).toHaveAttribute("href", "#/shadow/spam-tiny");
    expect(small.getByTestId("candidate-verdict")).toHaveTextContent("Verdict: Roll back");
    expect(small.getByTestId("candidate-agreement")).toHaveTextContent(/70\.0 %.*52\.0 % – 83\.0 %/);
    expect(small.getByTestId("candidate-pairs")).toHaveTextContent(/^Pairs30/);
    expect(small.getByTestId("candidate-latency-ratio")).toHaveTextContent("0.41×");
  });

  it("shows a single candidate as one card that links to it", async () => {
    render(
      withApi({ metrics: { listCandidates: () => ({ candidates: [fullReport(3)] }) } }, () => <ShadowPage />),
    );
    const card = await screen.findByRole("article", { name: "Candidate spam-v2" });
    expect(screen.getAllByTestId("candidate-card")).toHaveLength(1);
    expect(within(card).getByRole("link", { name: "spam-v2" })).toHaveAttribute("href", "#/shadow/spam-v2");
    expect(screen.getByTestId("primary-models")).toHaveTextContent("1 candidate");
  });

  it("refreshes the overview live", async () => {
    let calls = 0;
    render(
      withApi(
        {
          metrics: {
            listCandidates: () => {
              calls++;
              return { candidates: [fullReport(calls < 3 ? 10 : 11)] };
            },
          },
        },
        () => <ShadowPage pollMs={5} />,
      ),
    );
    expect(await screen.findByTestId("candidate-pairs")).toHaveTextContent(/^Pairs10/);
    await vi.waitFor(() => expect(screen.getByTestId("candidate-pairs")).toHaveTextContent(/^Pairs11/), WAIT);
    expect(calls).toBeGreaterThanOrEqual(3);
  });

  it("URL-encodes a candidate name that is not URL-safe, and renders a hostile one as text", async () => {
    const name = 'spam v3/<img src=x onerror="alert(1)">';
    render(
      withApi({ metrics: { listCandidates: () => ({ candidates: [fullReport(5, name)] }) } }, () => (
        <ShadowPage />
      )),
    );
    const link = await screen.findByRole("link", { name });
    expect(link).toHaveAttribute("href", `#/shadow/${encodeURIComponent(name)}`);
    expect(document.querySelector("img")).toBeNull();
  });
});

describe("one candidate's report (#/shadow/<name>)", () => {
  const page = (stream: ReturnType<typeof controlledStream>) =>
    withApi({ metrics: { watchShadowReport: stream.watch } }, () => (
      <ShadowPage candidate="spam-v2" retryDelayMs={() => 1} />
    ));

  it("says honestly that there is no comparison data while metrics-service does not implement reports", async () => {
    render(withApi({ metrics: {} }, () => <ShadowPage candidate="spam-v2" retryDelayMs={() => 60_000} />));
    expect(await screen.findByRole("heading", { name: "No comparison data" })).toBeInTheDocument();
    expect(screen.getByText(/does not produce reports yet/)).toBeInTheDocument();
    expect(screen.queryByText(/Verdict/)).toBeNull();
  });

  it("watches that candidate, names it and links back to every candidate", async () => {
    const stream = controlledStream();
    render(page(stream));
    expect(
      await screen.findByRole("heading", { level: 1, name: "Shadow comparison: spam-v2" }),
    ).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "← All candidates" })).toHaveAttribute("href", "#/shadow");
    await expect.poll(() => stream.calls[0]?.request.candidate).toBe("spam-v2");
  });

  it("says there is no data yet when the window holds no predictions", async () => {
    render(
      withApi(
        {
          metrics: {
            async *watchShadowReport() {
              yield { report: create(ShadowReportSchema, {}) };
            },
          },
        },
        () => <ShadowPage candidate="spam-v2" retryDelayMs={() => 60_000} />,
      ),
    );
    expect(await screen.findByRole("heading", { name: "No comparison data yet" })).toBeInTheDocument();
  });

  it("says a candidate the service does not know (NOT_FOUND) is unknown, with a way back", async () => {
    const requests: WatchShadowReportRequest[] = [];
    render(
      withApi(
        {
          metrics: {
            // biome-ignore lint/correctness/useYield: it fails before its first update
            async *watchShadowReport(request) {
              requests.push(request);
              throw new ConnectError(`no candidate ${request.candidate} in the window`, Code.NotFound);
            },
          },
        },
        () => <ShadowPage candidate="spam-v9" retryDelayMs={() => 60_000} />,
      ),
    );
    const notice = await screen.findByTestId("unknown-candidate");
    expect(within(notice).getByRole("heading")).toHaveTextContent("No records from spam-v9 in this window");
    expect(within(notice).getByRole("link", { name: "all candidates" })).toHaveAttribute("href", "#/shadow");
    expect(screen.getByRole("status")).toHaveTextContent("Unknown candidate");
    expect(screen.queryByText(/No comparison data/)).toBeNull();
    expect(requests[0]?.candidate).toBe("spam-v9");
  });

  it("says a candidate answered with a report without any of its records is unknown in this window", async () => {
    // The primary's records in the window, none from the named candidate: a report with no pairs.
    const empty = fullReport(3, "spam-v9");
    if (empty.totals) {
      empty.totals.shadowRecordCount = 0n;
      empty.totals.pairCount = 0n;
    }
    const stream = controlledStream();
    render(
      withApi({ metrics: { watchShadowReport: stream.watch } }, () => <ShadowPage candidate="spam-v9" />),
    );
    await expect.poll(() => stream.calls.length).toBe(1);
    stream.push(empty);
    expect(await screen.findByTestId("unknown-candidate")).toHaveTextContent(/No shadow model named spam-v9/);
  });

  it("shows the verdict, agreement, flips, latency, accuracy and disagreements of a report", async () => {
    const stream = controlledStream();
    render(page(stream));
    await expect.poll(() => stream.calls.length).toBe(1);
    stream.push(fullReport());
    const verdict = await screen.findByRole("region", { name: /Verdict/ });
    expect(within(verdict).getByText("Hold")).toBeInTheDocument();
    expect(within(verdict).getByText(/agreement lower bound 80\.1 %/)).toBeInTheDocument();
    expect(within(verdict).getByRole("row", { name: /agreement_lower_bound/ })).toHaveTextContent(/warn/);
    expect(screen.getByTestId("agreement-rate")).toHaveTextContent("92.5 %");
    expect(screen.getByText(/95 % interval 80\.1 % – 97\.4 %/)).toBeInTheDocument();
    expect(screen.queryByTestId("unknown-candidate")).toBeNull();

    const matrix = screen.getByRole("table", { name: /Pairs by primary label/ });
    const hamRow = within(matrix).getByRole("row", { name: /^Ham/ });
    expect(
      within(hamRow)
        .getAllByRole("cell")
        .map((cell) => cell.textContent),
    ).toEqual(["20", "2"]);

    const latency = screen.getByRole("region", { name: "Latency per role" });
    expect(within(latency).getByRole("row", { name: /Shadow spam-v2 2\.0\.0/ })).toHaveTextContent("3.7 ms");
    expect(within(latency).getByText("1.19×")).toBeInTheDocument();
    expect(within(latency).getByRole("img", { name: /Latency distribution per role/ })).toBeInTheDocument();
    expect(screen.getByRole("img", { name: /Agreement over time in 3 buckets/ })).toBeInTheDocument();

    const accuracy = screen.getByRole("region", { name: "Accuracy on feedback" });
    expect(within(accuracy).getByRole("row", { name: /Primary/ })).toHaveTextContent("75.0 %");
    expect(within(accuracy).getByRole("row", { name: /Shadow/ })).toHaveTextContent("100.0 %");
    expect(within(accuracy).getByText(/Shadow: 1 × DEADLINE_EXCEEDED/)).toBeInTheDocument();

    const disagreements = screen.getByRole("region", { name: "Recent disagreements" });
    expect(within(disagreements).getByText("req-disagree-1")).toBeInTheDocument();
    expect(within(disagreements).getByText("Spam (70.0 %)")).toBeInTheDocument();
  });

  it("shows coverage, unmatched records, conflicts, caller errors and the last record times plainly", async () => {
    const stream = controlledStream();
    render(page(stream));
    await expect.poll(() => stream.calls.length).toBe(1);
    stream.push(fullReport(40));
    const traffic = await screen.findByRole("region", { name: "Traffic" });
    const stat = (label: string) => within(traffic).getByText(label, { selector: "dt" }).parentElement;
    expect(stat("Coverage")).toHaveTextContent("95.2 %");
    expect(stat("Coverage")).toHaveTextContent(/40 of 42 settled primary records .* promotion needs 90\.0 %/);
    expect(stat("Judged pairs")).toHaveTextContent("37");
    expect(stat("Primary only")).toHaveTextContent("2");
    expect(stat("Conflicts")).toHaveTextContent("1");
    expect(stat("Caller errors")).toHaveTextContent("2");
    expect(within(traffic).getByText(/2 pairs × INVALID_ARGUMENT on both sides/)).toBeInTheDocument();
    const conflicts = within(traffic).getByRole("table", { name: /inputs differ/ });
    expect(within(conflicts).getByRole("row", { name: /req-reused-7/ })).toHaveTextContent(
      /1111111111.*2222222222/,
    );
    expect(screen.getByTestId("last-records")).toHaveTextContent(
      /silent for 45\.0 s while the primary's kept coming \(promotion allows 30\.0 s\)/,
    );
    const accuracy = screen.getByRole("region", { name: "Accuracy on feedback" });
    expect(within(accuracy).getByRole("row", { name: /Primary/ })).toHaveTextContent("45 (2)");
  });

  it("updates live as new reports arrive", async () => {
    const stream = controlledStream();
    render(page(stream));
    await expect.poll(() => stream.calls.length).toBe(1);
    stream.push(fullReport(40));
    expect(await screen.findByText(/of 40 pairs got the same label/)).toBeInTheDocument();
    stream.push(fullReport(41));
    expect(await screen.findByText(/of 41 pairs got the same label/)).toBeInTheDocument();
    expect(screen.getByRole("status")).toHaveTextContent(/Live/);
  });

  it("keeps the report on screen and says it is reconnecting when the stream breaks", async () => {
    const stream = controlledStream();
    render(
      withApi({ metrics: { watchShadowReport: stream.watch } }, () => (
        <ShadowPage candidate="spam-v2" retryDelayMs={() => 60_000} />
      )),
    );
    await expect.poll(() => stream.calls.length).toBe(1);
    stream.push(fullReport(40));
    expect(await screen.findByText(/of 40 pairs got the same label/)).toBeInTheDocument();
    stream.fail(new ConnectError("stream reset by app-service", Code.Internal));
    await vi.waitFor(
      () =>
        expect(screen.getByRole("status")).toHaveTextContent("Reconnecting… (stream reset by app-service)"),
      WAIT,
    );
    expect(screen.getByText(/of 40 pairs got the same label/)).toBeInTheDocument();
  });
});
