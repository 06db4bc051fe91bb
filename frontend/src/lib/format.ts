/**
 * Plain-language wording shared by every page, kept apart from components so it is unit-tested.
 * Each map over an API enum is a `Record<Enum, string>`: a code the API adds without wording
 * here fails `tsc`.
 */
import type { Aggregation, ApiErrorCode, JobState, Label, LowConfidenceReason, Stage } from "../api/client";

const REASONS: Record<LowConfidenceReason, string> = {
  no_face_found: "No face was found, so nothing could be scored.",
  too_few_faces: "No person was seen in enough frames; the score rests on only a few faces.",
  scores_disagree: "The scores of the same face disagree from frame to frame, so no single answer is clear.",
  borderline: "The score lies between the inconclusive and the manipulation threshold.",
};

/** A low-confidence reason code in words; a code from a newer API is still shown, in readable form. */
export function describeReason(code: string): string {
  const known = (REASONS as Record<string, string>)[code];
  if (known) return known;
  const words = code.replace(/[_-]+/g, " ").trim();
  return words ? `${words.charAt(0).toUpperCase()}${words.slice(1)}.` : "Unspecified reason.";
}

/** `network`: the web app's own code for a request that never reached the server. */
const ERRORS: Record<ApiErrorCode | "network", string> = {
  corrupt_media: "The file could not be read; it may be damaged or incomplete.",
  unsupported_media: "This kind of file is not supported.",
  empty_file: "The file is empty.",
  too_long: "The video is longer than this service accepts.",
  too_large: "The file is larger than this service accepts.",
  dimensions_too_large: "The image or video frames are larger than this service accepts.",
  dimensions_too_small: "The image or video is too small to hold a face this service can check.",
  timeout: "The analysis took too long and was stopped.",
  internal: "Something went wrong on our side. Please try again later.",
  network: "The server could not be reached. Check your connection and try again.",
  unavailable: "The service is temporarily unavailable. Please try again in a moment.",
  bad_request: "The request was not understood.",
  invalid_text: "The request holds characters that cannot be stored (a NUL or a broken character).",
  malformed_multipart: "The upload was malformed; try choosing the file again.",
  missing_file: "No file was sent.",
  client_disconnected: "The upload was interrupted before it finished.",
  validation_error: "Some of what was sent is not valid.",
  gone: "This link has expired or was revoked.",
  method_not_allowed: "This action is not available here.",
  conflict: "This cannot be done in the job's current state.",
  insufficient_storage: "The server is out of space for uploads right now. Please try again later.",
  not_found: "This job does not exist, or you are not allowed to see it.",
  not_authenticated: "You need to sign in for this.",
  invalid_credentials: "Wrong email or password.",
  invalid_email: "That is not a valid email address.",
  weak_password: "Choose a stronger password.",
  email_taken: "An account with this email already exists.",
  csrf_failed: "Your session could not be confirmed. Reload the page and try again.",
  rate_limited: "Too many attempts. Wait a little and try again.",
  quota_exceeded: "You have used today's upload quota.",
  accounts_disabled: "Accounts are turned off on this server.",
  forbidden: "You are not allowed to do this.",
};

/** A job or request error code as a sentence; the server's own message is shown next to it. */
export function describeError(code: string): string {
  return (ERRORS as Record<string, string>)[code] ?? "The request failed.";
}

const STAGES: Record<Stage, string> = {
  probing: "Reading the file",
  sampling: "Picking frames",
  detecting: "Finding faces",
  classifying: "Scoring faces",
  aggregating: "Combining scores",
  explaining: "Drawing heat maps",
  saving: "Saving the report",
};

export const STAGE_ORDER = Object.keys(STAGES) as Stage[];

export function describeStage(stage: Stage | null | undefined): string {
  if (!stage) return "Waiting";
  return STAGES[stage] ?? stage;
}

const JOB_STATES: Record<JobState, string> = {
  queued: "Queued",
  running: "Running",
  succeeded: "Finished",
  failed: "Failed",
  canceled: "Canceled",
};

/** A job's state in a word; a job that has a verdict is "Finished" even when the API marks a no-face file failed. */
export function describeJobState(state: JobState, hasVerdict: boolean): string {
  return hasVerdict ? JOB_STATES.succeeded : JOB_STATES[state];
}

const AGGREGATIONS: Record<Aggregation, string> = {
  mean: "Mean of each person's face scores",
  trimmed_top: "Mean of each person's highest face scores (top 30%)",
  confident: "Mean of the confident face scores, else of all (DFDC winner's rule)",
};

/** How face scores were combined, in words instead of the pipeline's code name. */
export function describeAggregation(aggregation: Aggregation): string {
  return AGGREGATIONS[aggregation];
}

export function formatPercent(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return `${(value * 100).toFixed(digits)}%`;
}

export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "–";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  const rest = Math.round(seconds - minutes * 60);
  return `${minutes} min ${rest.toString().padStart(2, "0")} s`;
}

/**
 * How long the analysis took. The pipeline records each stage and also `total` (wall time from
 * start to end); summing every entry counted the time twice.
 */
export function analysisSeconds(stageSeconds: Record<string, number> | null | undefined): number | null {
  if (!stageSeconds) return null;
  const { total, ...stages } = stageSeconds;
  if (total !== undefined) return total;
  const values = Object.values(stages);
  return values.length > 0 ? values.reduce((sum, value) => sum + value, 0) : null;
}

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** A label from the API; anything unknown is inconclusive, never called either way. */
export function normaliseLabel(label: string | null | undefined): Label {
  return label === "manipulated" || label === "no_signs" ? label : "inconclusive";
}

/** The one wording of the three outcomes, used by every page. */
export const VERDICT_TEXT: Record<Label, { title: string; summary: string }> = {
  manipulated: {
    title: "Signs of manipulation",
    summary:
      "The score reached the threshold: the model finds traces typical of face-swap manipulation. A reason to look closer, not proof.",
  },
  no_signs: {
    title: "No signs of manipulation found",
    summary: "The score stays below the thresholds. This lowers the odds of a face swap; it does not prove the media is authentic.",
  },
  inconclusive: {
    title: "Inconclusive",
    summary: "The analysis ran, but the evidence supports neither answer. The reasons are below.",
  },
};

export function describeVerdict(label: string | null | undefined): { title: string; summary: string } {
  return VERDICT_TEXT[normaliseLabel(label)];
}

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "–";
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A face box's corners (x1, y1, x2, y2 in frame pixels); the schema types the box as four numbers. */
export function corners(box: readonly number[]): [number, number, number, number] {
  const [x1 = 0, y1 = 0, x2 = 0, y2 = 0] = box;
  return [x1, y1, x2, y2];
}
