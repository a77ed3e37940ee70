// The reporter moved to @shadowmesh/common (app-service reports failed mirrored calls with it too). This re-export
// keeps model-service's imports of "./reporter.js" working; new code imports from "@shadowmesh/common".
export {
  PredictionReporter,
  type ReportEntry,
  type ReporterObserver,
  type ReporterOptions,
  type ReportSink,
} from "@shadowmesh/common";
