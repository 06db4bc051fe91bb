import { artifactUrl, type AnalysisResult, type Artifact, type JobPublic } from "../api/client";
import { formatPercent, formatSeconds } from "../lib/format";

interface Pair {
  rank: number;
  heatmap: Artifact | undefined;
  frame: Artifact | undefined;
}

function pairsOf(artifacts: Artifact[]): Pair[] {
  const byRank = new Map<number, Pair>();
  for (const artifact of artifacts) {
    if (artifact.face_rank === null || artifact.face_rank === undefined) continue;
    if (artifact.kind !== "gradcam" && artifact.kind !== "frame") continue;
    const pair = byRank.get(artifact.face_rank) ?? { rank: artifact.face_rank, heatmap: undefined, frame: undefined };
    if (artifact.kind === "gradcam") pair.heatmap = artifact;
    else pair.frame = artifact;
    byRank.set(artifact.face_rank, pair);
  }
  return [...byRank.values()].sort((a, b) => a.rank - b.rank);
}

/** Grad-CAM heat maps of the most suspicious faces, each beside the frame it came from. */
export function Gallery({ job, result }: { job: JobPublic; result: AnalysisResult }) {
  const pairs = pairsOf(result.artifacts ?? []);
  if (pairs.length === 0) return null;
  return (
    <section className="card" aria-labelledby="gallery-title" data-testid="gallery">
      <h2 id="gallery-title">Where the model looked</h2>
      <p className="muted small">
        The heat maps (Grad-CAM) show which parts of each face drove its score; warm colours weigh most. They explain the
        model, not the truth.
      </p>
      <ol className="gallery">
        {pairs.map((pair) => {
          const info = pair.heatmap ?? pair.frame;
          const when = info?.timestamp_seconds;
          const person = info?.track_id;
          const caption = [
            `Face #${pair.rank}`,
            person !== null && person !== undefined ? `person ${person + 1}` : null,
            result.media.kind === "video" && when !== null && when !== undefined ? `at ${formatSeconds(when)}` : null,
            info?.p_fake !== null && info?.p_fake !== undefined ? `score ${formatPercent(info.p_fake, 1)}` : null,
          ]
            .filter(Boolean)
            .join(", ");
          return (
            <li key={pair.rank}>
              <figure className="gallery-item">
                <div className="gallery-images">
                  {pair.heatmap ? (
                    <a href={artifactUrl(job, pair.heatmap.name)} target="_blank" rel="noreferrer">
                      <img src={artifactUrl(job, pair.heatmap.name)} alt={`Heat map over ${caption}`} loading="lazy" data-testid="gradcam" />
                    </a>
                  ) : null}
                  {pair.frame ? (
                    <a href={artifactUrl(job, pair.frame.name)} target="_blank" rel="noreferrer">
                      <img src={artifactUrl(job, pair.frame.name)} alt={`Frame with ${caption} outlined`} loading="lazy" data-testid="frame" />
                    </a>
                  ) : null}
                </div>
                <figcaption>{caption}</figcaption>
              </figure>
            </li>
          );
        })}
      </ol>
    </section>
  );
}
