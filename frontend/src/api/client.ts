/**
 * The one way the app talks to the API: openapi-fetch over the types generated from the API's
 * OpenAPI schema (`npm run gen:api`). Pages import the client and the named types from here.
 */
import createClient from "openapi-fetch";

import { credentialHeaders, withJobToken } from "./credentials";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type JobPublic = Schemas["JobPublic"];
/** A job as a result page shows it: the owner's `JobPublic` or a share link's `SharedJob`. */
export type ShownJob = Omit<JobPublic, "attempts" | "queue_position" | "reused_from" | "links"> & {
  reused_from?: string | null;
  links: Pick<JobPublic["links"], "self" | "artifacts" | "report">;
};
export type JobCreated = Schemas["JobCreated"];
export type JobList = Schemas["JobList"];
export type JobState = JobPublic["state"];
export type AnalysisResult = Schemas["AnalysisResult"];
export type Artifact = Schemas["Artifact"];
export type Track = Schemas["Track"];
export type Face = Schemas["Face"];
export type MediaInfo = Schemas["MediaInfo"];
export type Label = Schemas["Label"];
export type LowConfidenceReason = Schemas["LowConfidenceReason"];
export type Aggregation = Schemas["Aggregation"];
export type OperatingPoint = Schemas["OperatingPoint"];
export type Signal = Schemas["Signal"];
export type Stage = Schemas["Stage"];
export type ArtifactKind = Schemas["ArtifactKind"];
export type Limits = Schemas["Limits"];
/** Every `error.code` the API (and nginx in front of it) answers with. */
export type ApiErrorCode = Schemas["ApiErrorCode"];
/** Why a job failed (`job.error.code`). */
export type JobErrorCode = Schemas["ErrorCode"];

export const FINAL_STATES: ReadonlySet<JobState> = new Set<JobState>(["succeeded", "failed", "canceled"]);

// Same origin as the page (nginx or the API serves both); absolute so it also works outside a page.
export const api = createClient<paths>({ baseUrl: globalThis.location?.origin ?? "", credentials: "same-origin" });
api.use({
  onRequest({ request }) {
    const headers = credentialHeaders(request.method, new URL(request.url).pathname);
    for (const [name, value] of Object.entries(headers)) request.headers.set(name, value);
    return request;
  },
});

/** The API's error body: `{"error": {"code", "message", "details"}, "request_id"}`. */
export type ErrorBody = Schemas["ErrorResponse"];

/** A failed request, carrying the API's stable error code so pages can explain it in words. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  readonly requestId: string | null;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}, requestId: string | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
  }

  /** Builds the error from whatever body came back: the API's shape, a proxy's HTML page, or nothing. */
  static fromBody(status: number, body: unknown): ApiError {
    if (isErrorBody(body)) {
      const { code, message, details } = body.error;
      return new ApiError(status, code, message, details ?? {}, body.request_id ?? null);
    }
    if (status === 413) return new ApiError(status, "too_large", "The file is larger than this service accepts.");
    if (status === 0) return new ApiError(0, "network", "The server could not be reached.");
    if (status >= 500) return new ApiError(status, "unavailable", `The server answered with status ${status}.`);
    return new ApiError(status, `http_${status}`, `The server answered with status ${status}.`);
  }
}

export function isErrorBody(body: unknown): body is ErrorBody {
  if (typeof body !== "object" || body === null || !("error" in body)) return false;
  const error = (body as { error: unknown }).error;
  return typeof error === "object" && error !== null && typeof (error as { code?: unknown }).code === "string";
}

/** Returns `data` (undefined for a 204) or throws an `ApiError` built from openapi-fetch's `{data, error, response}`. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok) return result.data as T;
  throw ApiError.fromBody(result.response.status, result.error);
}

/** Wraps a network failure (fetch rejects) into the same error type as an HTTP error. */
export async function call<T>(request: () => Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await request();
  } catch (exc) {
    if (exc instanceof DOMException && exc.name === "AbortError") throw exc;
    throw new ApiError(0, "network", "The server could not be reached.");
  }
  return unwrap(result);
}

/** An artifact's URL, with the job token when the browser holds one (for <img> and links). */
export function artifactUrl(job: Pick<ShownJob, "id" | "links">, name: string): string {
  return withJobToken(`${job.links.artifacts.replace(/\/$/, "")}/${encodeURIComponent(name)}`, job.id);
}

export function reportUrl(job: Pick<ShownJob, "id" | "links">): string {
  return withJobToken(job.links.report, job.id);
}

export function getJob(jobId: string, signal?: AbortSignal): Promise<JobPublic> {
  return call(() => api.GET("/api/jobs/{job_id}", { params: { path: { job_id: jobId } }, signal }));
}
