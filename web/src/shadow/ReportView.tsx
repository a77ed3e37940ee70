import type { ShadowReport } from "@shadowmesh/gen/shadowmesh/metrics/v1/metrics_service_pb.js";
import { AccuracySection } from "./AccuracySection";
import { AgreementSection } from "./AgreementSection";
import { DisagreementsSection } from "./DisagreementsSection";
import { LatencySection } from "./LatencySection";
import { TrafficSection } from "./TrafficSection";
import { VerdictSection } from "./VerdictSection";

/** One candidate's full report, section by section. */
export function ReportView(props: { report: ShadowReport }) {
  return (
    <div class="report">
      <VerdictSection report={props.report} />
      <TrafficSection report={props.report} />
      <AgreementSection report={props.report} />
      <LatencySection report={props.report} />
      <AccuracySection report={props.report} />
      <DisagreementsSection report={props.report} />
    </div>
  );
}
