/**
 * Read-only share links: the owner makes an expiring, revocable link; anyone with it opens the
 * result without an account.
 *
 * TO WIRE AFTER THE API MERGE (lead): these routes are not in the generated schema yet, so this
 * module calls them with plain `fetch` and hand-written shapes, kept here and nowhere else.
 * Once `npm run gen:api` has them, replace `ShareLink` and `SharedJob` with the generated types
 * (`Schemas["..."]`), the three `fetch` calls with `api.POST/DELETE/GET` through `call`, and
 * delete this note. Assumed shapes:
 *   POST   /api/jobs/{job_id}/shares  {"expires_in_seconds": n}  -> 201 ShareLink
 *   DELETE /api/jobs/{job_id}/shares                             -> 204 (every link of the job revoked)
 *   GET    /api/shared/{token}                                   -> 200 JobPublic, whose `links`
 *          (artifacts, report) work with the share token alone; 404 once expired or revoked.
 */
import { ApiError, type JobPublic } from "./client";
import { credentialHeaders } from "./credentials";

export interface ShareLink {
  token: string;
  expires_at: string;
  /** The API may give a full URL; otherwise the web app builds `/shared/{token}`. */
  url?: string | null;
}

export type SharedJob = JobPublic;

/** Expiry choices offered to the owner, in seconds. */
export const SHARE_EXPIRY_OPTIONS: readonly { seconds: number; label: string }[] = [
  { seconds: 3_600, label: "1 hour" },
  { seconds: 86_400, label: "1 day" },
  { seconds: 7 * 86_400, label: "7 days" },
  { seconds: 30 * 86_400, label: "30 days" },
];

const sharesPath = (jobId: string) => `/api/jobs/${encodeURIComponent(jobId)}/shares`;
const sharedPath = (token: string) => `/api/shared/${encodeURIComponent(token)}`;

async function send(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json", ...credentialHeaders(method, path) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(path, { method, headers, signal, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (exc) {
    if (exc instanceof DOMException && exc.name === "AbortError") throw exc;
    throw new ApiError(0, "network", "The server could not be reached.");
  }
  if (response.ok) return response;
  let payload: unknown = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  throw ApiError.fromBody(response.status, payload);
}

/** The page URL a colleague opens: the API's own, or this app's `/shared/{token}` route. */
export function shareUrl(link: ShareLink, origin: string = globalThis.location?.origin ?? ""): string {
  return link.url ? new URL(link.url, origin).toString() : `${origin}/shared/${encodeURIComponent(link.token)}`;
}

export async function createShareLink(jobId: string, expiresInSeconds: number): Promise<ShareLink> {
  const response = await send("POST", sharesPath(jobId), { expires_in_seconds: expiresInSeconds });
  return (await response.json()) as ShareLink;
}

export async function revokeShareLinks(jobId: string): Promise<void> {
  await send("DELETE", sharesPath(jobId));
}

export async function getSharedJob(token: string, signal?: AbortSignal): Promise<SharedJob> {
  const response = await send("GET", sharedPath(token), undefined, signal);
  return (await response.json()) as SharedJob;
}
