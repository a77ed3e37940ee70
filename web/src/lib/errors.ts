import { Code, ConnectError } from "@connectrpc/connect";

/** What the user is told when a call to app-service fails: plain words, never a stack trace or a status code. */
export function describePredictError(error: unknown): string {
  const connectError = ConnectError.from(error);
  switch (connectError.code) {
    case Code.Unavailable:
      return "The model is unavailable right now. Please try again in a moment.";
    case Code.DeadlineExceeded:
      return "The model took too long to answer. Please try again.";
    case Code.InvalidArgument:
      if (/limit|long|exceed|max/i.test(connectError.rawMessage)) {
        return `The text is too long for the model: ${connectError.rawMessage}.`;
      }
      return `The model cannot classify this text: ${connectError.rawMessage}.`;
    case Code.ResourceExhausted:
      return "The text is too long to send. Please shorten it.";
    case Code.Canceled:
      return "The request was cancelled.";
    case Code.Unimplemented:
      return "Classification is not available on this server yet.";
    default:
      return "Something went wrong while classifying. Please try again.";
  }
}

/** Whether an error from metrics-service means "there is no comparison service (yet)". */
export function isComparisonMissing(error: unknown): boolean {
  const code = ConnectError.from(error).code;
  return code === Code.Unimplemented || code === Code.Unavailable || code === Code.NotFound;
}

export function describeFeedbackError(error: unknown): string {
  if (isComparisonMissing(error)) {
    return "Your feedback could not be saved: the comparison service is not available.";
  }
  switch (ConnectError.from(error).code) {
    case Code.PermissionDenied:
      return "Your feedback could not be saved: this answer's feedback token is not valid (any more). Classify the message again to give feedback.";
    case Code.FailedPrecondition:
      return "Your feedback could not be saved: feedback is switched off on this server.";
    case Code.InvalidArgument:
      return "Your feedback could not be saved: the comparison service did not accept it.";
    default:
      return "Your feedback could not be saved. Please try again.";
  }
}
