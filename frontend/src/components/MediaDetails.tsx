import type { AnalysisResult, ShownJob } from "../api/client";
import { analysisSeconds, describeAggregation, formatBytes, formatDateTime, formatSeconds } from "../lib/format";

/** What was analysed and how: file, media properties, model and timings. */
export function MediaDetails({ job, result }: { job: ShownJob; result: AnalysisResult | null }) {
  const media = result?.media ?? job.media;
  const rows: [string, string][] = [
    ["File", job.original_filename ?? "(unnamed)"],
    ["Size", formatBytes(job.size_bytes)],
    ["Type", `${job.kind} (${job.media_format})`],
  ];
  if (media) {
    rows.push(["Resolution", `${media.width} × ${media.height}`]);
    if (media.duration_seconds !== null && media.duration_seconds !== undefined) rows.push(["Duration", formatSeconds(media.duration_seconds)]);
    if (media.fps) rows.push(["Frame rate", `${media.fps.toFixed(2)} fps`]);
    if (media.codec) rows.push(["Codec", media.codec]);
  }
  if (result) {
    if (result.media.kind === "video") rows.push(["Frames sampled", String(result.frames.length)]);
    rows.push(["Faces scored", String(result.faces.length)]);
    rows.push(["How face scores were combined", describeAggregation(result.aggregation)]);
    rows.push(["Model", `${result.model.model_id} ${result.model.version} (${result.model.sha256.slice(0, 12)})`]);
    rows.push(["Device", result.device]);
    const seconds = analysisSeconds(result.stage_seconds);
    if (seconds !== null) rows.push(["Analysis time", formatSeconds(seconds)]);
  }
  rows.push(["Submitted", formatDateTime(job.created_at)]);
  if (job.finished_at) rows.push(["Finished", formatDateTime(job.finished_at)]);
  rows.push(["SHA-256", job.sha256]);
  return (
    <section className="card" aria-labelledby="media-title" data-testid="media-details">
      <h2 id="media-title">Details</h2>
      <dl className="details">
        {rows.map(([term, value]) => (
          <div key={term}>
            <dt>{term}</dt>
            <dd className={term === "SHA-256" ? "mono wrap" : undefined} data-testid={term === "Analysis time" ? "analysis-time" : undefined}>
              {value}
            </dd>
          </div>
        ))}
      </dl>
    </section>
  );
}
