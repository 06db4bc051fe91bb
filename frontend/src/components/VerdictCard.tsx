import { Link } from "react-router-dom";

import type { AnalysisResult } from "../api/client";
import { describeReason, describeVerdict, formatPercent, normaliseLabel } from "../lib/format";

/** Score, threshold and label, with the low-confidence reasons in plain words. */
export function VerdictCard({ result, reused }: { result: AnalysisResult; reused: boolean }) {
  const label = normaliseLabel(result.label);
  const verdict = describeVerdict(label);
  const reasons = result.low_confidence_reasons ?? [];
  const score = result.score;
  return (
    <section className={`card verdict verdict-${label}`} aria-labelledby="verdict-title" data-testid="verdict">
      <p className="eyebrow">Verdict</p>
      <h2 id="verdict-title" data-testid="verdict-label">
        {verdict.title}
      </h2>
      <p>{verdict.summary}</p>
      <div className="score-row">
        <div>
          <p className="metric" data-testid="verdict-score">
            {formatPercent(score, 1)}
          </p>
          <p className="muted small">manipulation score</p>
        </div>
        <div>
          <p className="metric">{formatPercent(result.decision.threshold, 1)}</p>
          <p className="muted small">decision threshold</p>
        </div>
        <div>
          <p className="metric">{label}</p>
          <p className="muted small">label</p>
        </div>
      </div>
      {score !== null && score !== undefined ? (
        <div className="gauge" aria-hidden="true">
          <div className="gauge-fill" style={{ width: `${Math.min(Math.max(score, 0), 1) * 100}%` }} />
          <div className="gauge-threshold" style={{ left: `${Math.min(Math.max(result.decision.threshold, 0), 1) * 100}%` }} />
        </div>
      ) : null}
      {result.low_confidence || reasons.length > 0 ? (
        <div className="reasons" data-testid="low-confidence">
          <p className="alert-title">Why this result is uncertain</p>
          <ul>
            {reasons.map((reason) => (
              <li key={reason}>{describeReason(reason)}</li>
            ))}
          </ul>
        </div>
      ) : null}
      {(result.notes ?? []).length > 0 ? (
        <ul className="notes muted small" aria-label="Notes">
          {(result.notes ?? []).map((note) => (
            <li key={note}>{note}</li>
          ))}
        </ul>
      ) : null}
      {reused ? <p className="muted small">This file was analysed before with the same model; the stored result is shown.</p> : null}
      <p className="muted small">
        A score is a model's estimate, not proof. <Link to="/about">What a score means</Link>.
      </p>
    </section>
  );
}
