import { useEffect, useRef, useState, type RefObject } from "react";

import type { AnalysisResult } from "../api/client";
import { formatPercent, formatSeconds } from "../lib/format";
import { makeLayout, timeTicks, trackColour, trackPath, xFor, yFor, type TimelinePoint } from "../lib/timeline";

/** Each face's score over video time, one colour per person, with the decision threshold. */
/** The element's width in CSS pixels, followed as it resizes (null before the first layout). */
function useWidth<T extends HTMLElement>(): [RefObject<T | null>, number | null] {
  const ref = useRef<T | null>(null);
  const [width, setWidth] = useState<number | null>(null);
  useEffect(() => {
    const element = ref.current;
    if (!element) return;
    const measure = () => setWidth(Math.round(element.clientWidth));
    measure();
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

// The chart is drawn at the width it is shown (one SVG unit = one CSS pixel), so its text keeps
// its CSS size on a phone instead of shrinking with a scaled viewBox.
const DEFAULT_WIDTH = 640;
const MIN_WIDTH = 280;
const PX_PER_TIME_TICK = 90;

export function Timeline({ result }: { result: AnalysisResult }) {
  const [wrapRef, measured] = useWidth<HTMLDivElement>();
  const points: TimelinePoint[] = result.faces.map((face) => ({ t: face.timestamp_seconds, p: face.p_fake, track: face.track_id }));
  if (points.length === 0) return null;
  const width = Math.max(measured ?? DEFAULT_WIDTH, MIN_WIDTH);
  const layout = makeLayout(result.media.duration_seconds, points, width, width < 480 ? 200 : 220);
  const band = result.decision.inconclusive_threshold < result.decision.threshold;
  const tracks = [...new Set(points.map((point) => point.track))].sort((a, b) => a - b);
  const thresholdY = yFor(layout, result.decision.threshold);
  const bottom = layout.height - layout.padBottom;
  return (
    <section className="card" aria-labelledby="timeline-title" data-testid="timeline">
      <h2 id="timeline-title">Face scores over time</h2>
      <p className="muted small">
        Each dot is one face in one sampled frame; at or above the dashed line a face shows signs of manipulation.
      </p>
      <div className="chart-wrap" ref={wrapRef}>
        <svg
          width={layout.width}
          height={layout.height}
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
          {band ? (
            <rect
              x={layout.padLeft}
              width={layout.width - layout.padLeft - layout.padRight}
              y={thresholdY}
              height={yFor(layout, result.decision.inconclusive_threshold) - thresholdY}
              className="band"
              data-testid="inconclusive-band"
            >
              <title>{`Inconclusive from ${formatPercent(result.decision.inconclusive_threshold)} to ${formatPercent(result.decision.threshold)}`}</title>
            </rect>
          ) : null}
          {timeTicks(layout.duration, Math.max(2, Math.floor(width / PX_PER_TIME_TICK))).map((t) => (
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
