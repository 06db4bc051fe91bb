import { useCallback, useEffect, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { api, call, FINAL_STATES, getJob, reportUrl, type JobPublic } from "../api/client";
import { forgetJobToken } from "../api/credentials";
import { followJob, type LiveMode } from "../api/live";
import { ErrorMessage } from "../components/ErrorMessage";
import { MediaDetails } from "../components/MediaDetails";
import { ProgressPanel, type ProgressView } from "../components/ProgressPanel";
import { ResultView } from "../components/ResultView";
import { SharePanel } from "../components/SharePanel";
import { describeError } from "../lib/format";
import { verdictResult } from "../lib/verdict";
import type { RerunState } from "./AnalyzePage";

export function JobPage() {
  const { jobId = "" } = useParams();
  const navigate = useNavigate();
  const [job, setJob] = useState<JobPublic | null>(null);
  const [view, setView] = useState<ProgressView | null>(null);
  const [mode, setMode] = useState<LiveMode>("connecting");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    document.title = "Result · DeepScreen";
    const controller = new AbortController();
    let stop: (() => void) | null = null;
    setJob(null);
    setError(null);
    getJob(jobId, controller.signal)
      .then((loaded) => {
        setJob(loaded);
        setView({ state: loaded.state, stage: loaded.stage, progress: loaded.progress, queue_position: loaded.queue_position });
        if (FINAL_STATES.has(loaded.state)) {
          setMode("done");
          return;
        }
        stop = followJob(jobId, {
          onEvent: (event) =>
            setView({ state: event.state, stage: event.stage ?? null, progress: event.progress, queue_position: event.queue_position ?? null }),
          onFinal: (final) => {
            setJob(final);
            setView({ state: final.state, stage: final.stage, progress: final.progress, queue_position: null });
          },
          onMode: setMode,
        });
      })
      .catch((exc: unknown) => {
        if (!controller.signal.aborted) setError(exc);
      });
    return () => {
      controller.abort();
      stop?.();
    };
  }, [jobId]);

  const remove = useCallback(async () => {
    if (!job) return;
    const final = FINAL_STATES.has(job.state);
    const question = final ? "Delete this job and its files?" : "Cancel this analysis? It stops now; you can analyse the file again later.";
    if (!window.confirm(question)) return;
    setBusy(true);
    try {
      await call(() => api.DELETE("/api/jobs/{job_id}", { params: { path: { job_id: job.id } } }));
      if (final) {
        forgetJobToken(job.id);
        navigate("/history");
      }
      else setJob(await getJob(job.id));
    } catch (exc) {
      setError(exc);
    } finally {
      setBusy(false);
    }
  }, [job, navigate]);

  if (error && !job) {
    return (
      <>
        <h1>Job not available</h1>
        <ErrorMessage error={error} title="This job cannot be shown" />
        <p>
          <Link to="/">Analyse another file</Link>
        </p>
      </>
    );
  }
  if (!job || !view) return <p aria-live="polite">Loading…</p>;

  const result = verdictResult(job);
  const final = FINAL_STATES.has(job.state);
  return (
    <>
      <div className="row-between page-head">
        <h1 className="truncate">{job.original_filename ?? "Analysis"}</h1>
        <div className="actions">
          {final && result ? (
            <a className="button" href={reportUrl(job)} download={`deepscreen-${job.id}.json`} data-testid="download-report">
              Download JSON report
            </a>
          ) : null}
          <button type="button" className="button button-secondary" onClick={() => void remove()} disabled={busy}>
            {final ? "Delete" : "Cancel"}
          </button>
        </div>
      </div>
      <p className="visually-hidden" role="status">
        {result ? "Analysis finished." : job.state === "failed" ? "Analysis failed." : ""}
      </p>
      <ErrorMessage error={error} />
      {!final ? <ProgressPanel view={view} mode={mode} /> : null}
      {job.state === "failed" && !result ? (
        <section className="card alert alert-error" role="alert" data-testid="job-failed">
          <p className="alert-title">The analysis could not be completed</p>
          <p>{describeError(job.error?.code ?? "internal")}</p>
          {job.error?.message && job.error.message !== describeError(job.error.code) ? (
            <p className="muted small">Details from the server: {job.error.message}</p>
          ) : null}
        </section>
      ) : null}
      {job.state === "canceled" ? (
        <section className="card alert" role="status" data-testid="job-canceled">
          <p>This analysis was canceled before it finished.</p>
          <button
            type="button"
            className="button"
            data-testid="rerun"
            onClick={() => navigate("/", { state: { rerun: { filename: job.original_filename, jobId: job.id } } satisfies RerunState })}
          >
            Analyse this file again
          </button>
        </section>
      ) : null}
      {result ? <ResultView job={job} result={result} /> : null}
      {final ? <MediaDetails job={job} result={result} /> : null}
      {result ? <SharePanel jobId={job.id} /> : null}
      <p>
        <Link to="/">Analyse another file</Link>
      </p>
    </>
  );
}
