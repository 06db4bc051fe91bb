import { Link } from "react-router-dom";

import type { Limits, Schemas } from "../api/client";
import { formatBytes, formatSeconds } from "../lib/format";

const TIER_NAMES: Record<Limits["tier"], string> = { free: "free", pro: "pro" };

/**
 * What the caller may upload, from the API's limits (today `GET /api/auth/me`, so only when
 * signed in). Without an account the API states no limits before an upload; a file over them is
 * refused with the limit in the answer, which the error message shows.
 */
export function UploadLimits({ limits, quota, accounts }: { limits: Limits | null; quota: Schemas["Quota"] | null; accounts: boolean }) {
  if (!limits) {
    return (
      <p className="muted small" data-testid="upload-limits">
        Photos (JPEG, PNG, WebP) and videos (MP4, MOV, WebM, MKV, AVI). Size, length and daily limits depend on the server
        {accounts ? (
          <>
            ; <Link to="/signin">sign in</Link> to see yours
          </>
        ) : null}
        .
      </p>
    );
  }
  return (
    <p className="muted small" data-testid="upload-limits">
      Photos (JPEG, PNG, WebP) and videos (MP4, MOV, WebM, MKV, AVI). On your {TIER_NAMES[limits.tier]} plan: files up to{" "}
      {formatBytes(limits.max_upload_bytes)}, videos up to {formatSeconds(limits.max_video_seconds)}, {limits.daily_uploads} uploads a day
      {quota ? ` (${quota.used} used today)` : ""}.
    </p>
  );
}
