import { useState } from "react";

import { createShareLink, revokeShareLink, SHARE_EXPIRY_OPTIONS, shareUrl, type ShareLink } from "../api/shares";
import { formatDateTime } from "../lib/format";
import { ErrorMessage } from "./ErrorMessage";

/** The owner's read-only link for a colleague: made with an expiry, copied, revoked. */
export function SharePanel({ jobId }: { jobId: string }) {
  const [expiry, setExpiry] = useState<number>(SHARE_EXPIRY_OPTIONS[1]?.seconds ?? 86_400);
  const [link, setLink] = useState<ShareLink | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState("");

  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    setNote("");
    try {
      await action();
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  };

  const create = () =>
    run(async () => {
      setLink(await createShareLink(jobId, expiry));
    });
  const revoke = () =>
    run(async () => {
      if (!window.confirm("Revoke the share link? Whoever has it can no longer open this result.")) return;
      if (link) await revokeShareLink(jobId, link.id);
      setLink(null);
      setNote("The share link was revoked.");
    });
  const copy = async () => {
    if (!link) return;
    try {
      await navigator.clipboard.writeText(shareUrl(link));
      setNote("Link copied.");
    } catch {
      setNote("Copying is blocked here: select the link and copy it yourself.");
    }
  };

  return (
    <section className="card" aria-labelledby="share-title" data-testid="share">
      <h2 id="share-title">Share a read-only link</h2>
      <p className="muted small">Anyone with the link sees this result, without an account, until it expires or you revoke it.</p>
      {link ? (
        <div className="share-link">
          <label htmlFor="share-url">Link (expires {formatDateTime(link.expires_at)})</label>
          <input id="share-url" className="mono" readOnly value={shareUrl(link)} onFocus={(event) => event.currentTarget.select()} data-testid="share-url" />
          <div className="actions">
            <button type="button" className="button" onClick={() => void copy()} data-testid="share-copy">
              Copy link
            </button>
            <button type="button" className="button button-secondary" onClick={() => void revoke()} disabled={busy} data-testid="share-revoke">
              Revoke
            </button>
          </div>
        </div>
      ) : (
        <div className="actions share-create">
          <label>
            Expires after{" "}
            <select value={expiry} onChange={(event) => setExpiry(Number(event.target.value))} data-testid="share-expiry">
              {SHARE_EXPIRY_OPTIONS.map((option) => (
                <option key={option.seconds} value={option.seconds}>
                  {option.label}
                </option>
              ))}
            </select>
          </label>
          <button type="button" className="button button-secondary" onClick={() => void create()} disabled={busy} data-testid="share-create">
            Create link
          </button>
        </div>
      )}
      <p className="small" role="status" data-testid="share-note">
        {note}
      </p>
      <ErrorMessage error={error} title="The share link could not be changed" />
    </section>
  );
}
