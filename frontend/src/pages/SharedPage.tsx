import { useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";

import { getSharedJob, type SharedJob } from "../api/shares";
import { ErrorMessage } from "../components/ErrorMessage";
import { MediaDetails } from "../components/MediaDetails";
import { ResultView } from "../components/ResultView";
import { verdictResult } from "../lib/verdict";

/** A result opened from a share link: read-only, no account, nothing to cancel or delete. */
export function SharedPage() {
  const { token = "" } = useParams();
  const [job, setJob] = useState<SharedJob | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    document.title = "Shared result · DeepScreen";
    const controller = new AbortController();
    setJob(null);
    setError(null);
    getSharedJob(token, controller.signal)
      .then(setJob)
      .catch((exc: unknown) => {
        if (!controller.signal.aborted) setError(exc);
      });
    return () => controller.abort();
  }, [token]);

  if (error) {
    return (
      <>
        <h1>Shared result not available</h1>
        <ErrorMessage error={error} title="This link does not open a result: it may have expired or been revoked" />
        <p>
          <Link to="/">Analyse a file yourself</Link>
        </p>
      </>
    );
  }
  if (!job) return <p aria-live="polite">Loading…</p>;
  const result = verdictResult(job);
  return (
    <>
      <h1 className="truncate">{job.original_filename ?? "Shared analysis"}</h1>
      <p className="muted small" data-testid="shared-note">
        A read-only result shared with you.
      </p>
      {result ? <ResultView job={job} result={result} /> : <p>This analysis has no result to show.</p>}
      <MediaDetails job={job} result={result} />
    </>
  );
}
