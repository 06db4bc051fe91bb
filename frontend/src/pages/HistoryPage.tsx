import { useEffect, useState } from "react";
import { Link } from "react-router-dom";

import { api, call, type JobList } from "../api/client";
import { ErrorMessage } from "../components/ErrorMessage";
import { describeJobState, describeVerdict, formatDateTime, formatPercent } from "../lib/format";
import { borderline, LABEL_TONE, verdictResult } from "../lib/verdict";

const PAGE_SIZE = 20;

/** The caller's jobs, newest first, with state and score. */
export function HistoryPage() {
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<JobList | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    document.title = "History · DeepScreen";
    const controller = new AbortController();
    setError(null);
    call(() => api.GET("/api/jobs", { params: { query: { limit: PAGE_SIZE, offset } }, signal: controller.signal }))
      .then(setPage)
      .catch((exc: unknown) => {
        if (!controller.signal.aborted) setError(exc);
      });
    return () => controller.abort();
  }, [offset]);

  return (
    <>
      <h1>History</h1>
      <ErrorMessage error={error} title="The history could not be loaded" />
      {page === null && error === null ? <p aria-live="polite">Loading…</p> : null}
      {page !== null && page.items.length === 0 ? (
        <p>
          No analyses yet. <Link to="/">Analyse a file</Link>.
        </p>
      ) : null}
      {page !== null && page.items.length > 0 ? (
        <div className="card table-wrap">
          <table className="stack-table" data-testid="history">
            <caption className="visually-hidden">Your analyses, newest first</caption>
            <thead>
              <tr>
                <th scope="col">File</th>
                <th scope="col">Submitted</th>
                <th scope="col">Status</th>
                <th scope="col">Score</th>
                <th scope="col">Verdict</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((job) => {
                const result = verdictResult(job);
                const state = result ? "succeeded" : job.state;
                return (
                  <tr key={job.id}>
                    <th scope="row" className="truncate-cell">
                      <Link to={`/jobs/${encodeURIComponent(job.id)}`}>{job.original_filename ?? job.id}</Link>
                    </th>
                    <td data-label="Submitted">{formatDateTime(job.created_at)}</td>
                    <td data-label="Status">
                      <span className={`badge badge-state-${state}`}>{describeJobState(job.state, result !== null)}</span>
                    </td>
                    <td data-label="Score" data-testid="history-score">{formatPercent(result?.score, 1)}</td>
                    <td data-label="Verdict" data-testid="history-verdict">
                      {result ? (
                        <span className={`verdict-word verdict-word-${LABEL_TONE[result.label]}`}>
                          {describeVerdict(result.label).title}
                          {borderline(result) ? <span className="muted small"> (borderline)</span> : null}
                        </span>
                      ) : (
                        "–"
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      ) : null}
      {page !== null && page.total > PAGE_SIZE ? (
        <nav className="pager" aria-label="Pages">
          <button type="button" className="button button-secondary" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE_SIZE))}>
            Newer
          </button>
          <span className="muted small">
            {offset + 1}–{Math.min(offset + PAGE_SIZE, page.total)} of {page.total}
          </span>
          <button type="button" className="button button-secondary" disabled={offset + PAGE_SIZE >= page.total} onClick={() => setOffset(offset + PAGE_SIZE)}>
            Older
          </button>
        </nav>
      ) : null}
    </>
  );
}
