import { Link } from "react-router-dom";

import type { AnalysisResult, ShownJob } from "../api/client";
import { describeReason, describeVerdict, formatPercent, normaliseLabel } from "../lib/format";
import { weakSpotsFor } from "../lib/limits";
import { BORDERLINE_MARGIN, borderline, calibrationSentences, extraNotes, gaugeTicks, LABEL_TONE } from "../lib/verdict";

/** The score bar with its labelled thresholds; the labels sit on two rows so they never overlap. */
function ScoreGauge({ result }: { result: AnalysisResult }) {
  const score = result.score;
  const ticks = gaugeTicks(result.decision);
  return (
    <div className="gauge-block" data-testid="score-gauge">
      <div className="gauge-row gauge-row-above">
        {ticks
          .filter((tick) => tick.row === "above")
          .map((tick) => (
            <span key={tick.kind} className={`gauge-label gauge-label-${tick.align}`} style={{ left: `${tick.position * 100}%` }} data-testid={`tick-${tick.kind}`}>
              {tick.text}
            </span>
          ))}
      </div>
      <div
        className="gauge"
        role="img"
        aria-label={`Score ${formatPercent(score, 1)} on a bar from 0% to 100%; ${ticks.map((tick) => tick.text).join("; ")}.`}
      >
        {score !== null && score !== undefined ? <div className="gauge-fill" style={{ width: `${Math.min(Math.max(score, 0), 1) * 100}%` }} /> : null}
        {ticks.map((tick) => (
          <div key={tick.kind} className={`gauge-tick gauge-tick-${tick.kind}`} style={{ left: `${tick.position * 100}%` }} />
        ))}
      </div>
      <div className="gauge-row gauge-row-below">
        {ticks
          .filter((tick) => tick.row === "below")
          .map((tick) => (
            <span key={tick.kind} className={`gauge-label gauge-label-${tick.align}`} style={{ left: `${tick.position * 100}%` }} data-testid={`tick-${tick.kind}`}>
              {tick.text}
            </span>
          ))}
      </div>
    </div>
  );
}

/** The calibrated outcome in words, with the score, the thresholds and what they were set for. */
export function VerdictCard({ job, result }: { job: Pick<ShownJob, "reused_from" | "size_bytes">; result: AnalysisResult }) {
  const label = normaliseLabel(result.label);
  const verdict = describeVerdict(label);
  const reasons = result.low_confidence_reasons ?? [];
  const close = borderline(result);
  const notes = extraNotes(result);
  const weakSpots = weakSpotsFor(result, job.size_bytes);
  return (
    <section className={`card verdict verdict-${LABEL_TONE[label]}`} aria-labelledby="verdict-title" data-testid="verdict" data-label={label}>
      <p className="eyebrow">Verdict</p>
      <h2 id="verdict-title" data-testid="verdict-label">
        {verdict.title}
      </h2>
      {close ? (
        <p className="badge badge-borderline" data-testid="borderline">
          Borderline score
        </p>
      ) : null}
      <p>{verdict.summary}</p>
      <div className="score-row">
        <div>
          <p className="metric" data-testid="verdict-score">
            {formatPercent(result.score, 1)}
          </p>
          <p className="muted small">manipulation score</p>
        </div>
        <div>
          <p className="metric">{formatPercent(result.decision.threshold, 1)}</p>
          <p className="muted small">threshold for signs of manipulation</p>
        </div>
      </div>
      {result.score !== null && result.score !== undefined ? <ScoreGauge result={result} /> : null}
      {close === "near_threshold" ? (
        <p className="small" data-testid="borderline-text">
          The score is within {Math.round(BORDERLINE_MARGIN * 100)} percentage points of the threshold: a small change in the file could turn the outcome.
        </p>
      ) : null}
      <p className="muted small" data-testid="calibration">
        {calibrationSentences(result.decision).join(" ")}
      </p>
      {reasons.length > 0 ? (
        <div className="reasons" data-testid="low-confidence">
          <p className="alert-title">Why this result is inconclusive</p>
          <ul>
            {reasons.map((reason) => (
              <li key={reason}>{describeReason(reason)}</li>
            ))}
          </ul>
        </div>
      ) : null}
      {weakSpots.length > 0 ? (
        <div className="reasons" data-testid="weak-spots">
          <p className="alert-title">Known weak spots of the model that may apply here</p>
          <ul>
            {weakSpots.map((spot) => (
              <li key={spot.spot} data-spot={spot.spot}>
                <strong>{spot.title}.</strong> {spot.text}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {notes.length > 0 ? (
        <ul className="notes muted small" aria-label="Notes">
          {notes.map((note) => (
            <li key={note}>{note}</li>
          ))}
        </ul>
      ) : null}
      {job.reused_from ? (
        <p className="muted small" data-testid="reused">
          This file was analysed before with the same model; the stored result is shown.
        </p>
      ) : null}
      <p className="muted small">
        A score is a model's estimate, not proof. <Link to="/about">What a score means</Link>.
      </p>
    </section>
  );
}
