import { artifactUrl, type AnalysisResult, type Artifact, type Face, type ShownJob } from "../api/client";
import { corners, formatPercent, formatSeconds } from "../lib/format";

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

/** The explained face among the result's faces: same person and time, nearest score. */
function faceOf(result: AnalysisResult, artifact: Artifact | undefined): Face | undefined {
  if (!artifact) return undefined;
  const same = result.faces.filter(
    (face) => face.track_id === artifact.track_id && Math.abs(face.timestamp_seconds - (artifact.timestamp_seconds ?? Number.NaN)) < 1e-3,
  );
  return same.sort((a, b) => Math.abs(a.p_fake - (artifact.p_fake ?? 0)) - Math.abs(b.p_fake - (artifact.p_fake ?? 0)))[0];
}

const FACE_MARGIN = 0.15;

/**
 * The face cut out of the frame artifact (box plus a margin) with CSS alone, shown beside its
 * heat map: the Grad-CAM overlay tints the whole crop, which hides the face on dark clips.
 */
function FaceCut({ src, face, width, height, alt }: { src: string; face: Face; width: number; height: number; alt: string }) {
  // A square around the box, like the heat map's crop, shifted to stay inside the frame.
  const [x1, y1, x2, y2] = corners(face.box);
  const side = Math.min(Math.max(x2 - x1, y2 - y1) * (1 + 2 * FACE_MARGIN), width, height);
  if (side <= 0 || width <= 0 || height <= 0) return null;
  const left = Math.min(Math.max((x1 + x2) / 2 - side / 2, 0), width - side);
  const top = Math.min(Math.max((y1 + y2) / 2 - side / 2, 0), height - side);
  return (
    <div className="face-cut">
      <img
        src={src}
        alt={alt}
        loading="lazy"
        data-testid="face"
        style={{ width: `${(width / side) * 100}%`, left: `${(-left / side) * 100}%`, top: `${(-top / side) * 100}%` }}
      />
    </div>
  );
}

/** Grad-CAM heat maps of the most suspicious faces, each beside the face itself and above the frame it came from. */
export function Gallery({ job, result }: { job: ShownJob; result: AnalysisResult }) {
  const pairs = pairsOf(result.artifacts ?? []);
  if (pairs.length === 0) return null;
  return (
    <section className="card" aria-labelledby="gallery-title" data-testid="gallery">
      <h2 id="gallery-title">Where the model looked</h2>
      <p className="muted small">
        Each face is shown as it is, beside its heat map (Grad-CAM): warm colours mark the parts that drove its score. The
        heat maps explain the model, not the truth.
      </p>
      <ol className="gallery">
        {pairs.map((pair) => {
          const info = pair.heatmap ?? pair.frame;
          const face = faceOf(result, info);
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
                  {pair.frame && face ? (
                    <FaceCut src={artifactUrl(job, pair.frame.name)} face={face} width={result.media.width} height={result.media.height} alt={`${caption}, without heat map`} />
                  ) : null}
                  {pair.heatmap ? (
                    <a href={artifactUrl(job, pair.heatmap.name)} target="_blank" rel="noreferrer">
                      <img src={artifactUrl(job, pair.heatmap.name)} alt={`Heat map over ${caption}`} loading="lazy" data-testid="gradcam" />
                    </a>
                  ) : null}
                  {pair.frame ? (
                    <a className="gallery-frame" href={artifactUrl(job, pair.frame.name)} target="_blank" rel="noreferrer">
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
