import type { AnalysisResult } from "../api/client";
import { formatPercent, formatSeconds } from "../lib/format";
import { makeLayout, timeTicks, trackColour, trackPath, xFor, yFor, type TimelinePoint } from "../lib/timeline";

/** Each face's score over video time, one colour per person, with the decision threshold. */
export function Timeline({ result }: { result: AnalysisResult }) {
  const points: TimelinePoint[] = result.faces.map((face) => ({ t: face.timestamp_seconds, p: face.p_fake, track: face.track_id }));
  if (points.length === 0) return null;
  const layout = makeLayout(result.media.duration_seconds, points);
  const tracks = [...new Set(points.map((point) => point.track))].sort((a, b) => a - b);
  const thresholdY = yFor(layout, result.decision.threshold);
  const bottom = layout.height - layout.padBottom;
  return (
    <section className="card" aria-labelledby="timeline-title" data-testid="timeline">
      <h2 id="timeline-title">Face scores over time</h2>
      <p className="muted small">
        Each dot is one face in one sampled frame; at or above the dashed line a face shows signs of manipulation.
      </p>
      <div className="chart-wrap">
        <svg
          viewBox={`0 0 ${layout.width} ${layout.height}`}
          className="chart"
          role="img"
          aria-label={`Face scores for ${points.length} faces over ${formatSeconds(layout.duration)}; threshold ${formatPercent(result.decision.threshold)}.`}
        >
          {[0, 0.25, 0.5, 0.75, 1].map((p) => (
            <g key={p}>
              <line x1={layout.padLeft} x2={layout.width - layout.padRight} y1={yFor(layout, p)} y2={yFor(layout, p)} className="grid" />
              <text x={layout.padLeft - 6} y={yFor(layout, p) + 4} textAnchor="end" className="tick">
                {Math.round(p * 100)}%
              </text>
            </g>
          ))}
          {timeTicks(layout.duration).map((t) => (
            <text key={t} x={xFor(layout, t)} y={bottom + 16} textAnchor="middle" className="tick">
              {t}s
            </text>
          ))}
          <text x={layout.width / 2} y={layout.height - 2} textAnchor="middle" className="tick">
            video time
          </text>
          <line x1={layout.padLeft} x2={layout.width - layout.padRight} y1={thresholdY} y2={thresholdY} className="threshold" data-testid="threshold-line" />
          <text x={layout.width - layout.padRight} y={thresholdY - 4} textAnchor="end" className="tick threshold-label">
            threshold {formatPercent(result.decision.threshold)}
          </text>
          {tracks.map((track) => {
            const own = points.filter((point) => point.track === track);
            const colour = trackColour(track);
            return (
              <g key={track}>
                {own.length > 1 ? <path d={trackPath(layout, own)} fill="none" stroke={colour} strokeWidth={1.5} opacity={0.6} /> : null}
                {own.map((point, i) => (
                  <circle key={i} cx={xFor(layout, point.t)} cy={yFor(layout, point.p)} r={3.5} fill={colour}>
                    <title>{`Person ${track + 1} at ${formatSeconds(point.t)}: ${formatPercent(point.p, 1)}`}</title>
                  </circle>
                ))}
              </g>
            );
          })}
        </svg>
      </div>
      {tracks.length > 1 ? (
        <ul className="legend" aria-label="People">
          {tracks.map((track) => (
            <li key={track}>
              <span className="swatch" style={{ background: trackColour(track) }} aria-hidden="true" />
              Person {track + 1}
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
