/**
 * Read-only share links: the owner makes an expiring, revocable link; anyone with it opens the
 * result without an account (`/shared/{token}`), through the generated client like every call.
 */
import { api, call, type Schemas } from "./client";

export type ShareLink = Schemas["ShareCreated"];
export type SharedJob = Schemas["SharedJob"];

/** Expiry choices offered to the owner, in seconds. */
export const SHARE_EXPIRY_OPTIONS: readonly { seconds: number; label: string }[] = [
  { seconds: 3_600, label: "1 hour" },
  { seconds: 86_400, label: "1 day" },
  { seconds: 7 * 86_400, label: "7 days" },
  { seconds: 30 * 86_400, label: "30 days" },
];

/** The page URL a colleague opens: the web app's `/shared/{token}` route (the API names it `url`). */
export function shareUrl(link: Pick<ShareLink, "url" | "token">, origin: string = globalThis.location?.origin ?? ""): string {
  return link.url ? new URL(link.url, origin).toString() : `${origin}/shared/${encodeURIComponent(link.token)}`;
}

export function createShareLink(jobId: string, expiresInSeconds: number): Promise<ShareLink> {
  return call(() =>
    api.POST("/api/jobs/{job_id}/shares", { params: { path: { job_id: jobId } }, body: { expires_in_seconds: expiresInSeconds } }),
  );
}

export async function revokeShareLink(jobId: string, shareId: string): Promise<void> {
  await call(() => api.DELETE("/api/jobs/{job_id}/shares/{share_id}", { params: { path: { job_id: jobId, share_id: shareId } } }));
}

export function getSharedJob(token: string, signal?: AbortSignal): Promise<SharedJob> {
  return call(() => api.GET("/api/shared/{token}", { params: { path: { token } }, signal }));
}
