import type { AnalysisResult } from "../api/client";
import { formatPercent, formatSeconds } from "../lib/format";
import { trackColour } from "../lib/timeline";

/** One row per person followed across frames. */
export function TrackTable({ result }: { result: AnalysisResult }) {
  if (result.tracks.length === 0) return null;
  const tracks = [...result.tracks].sort((a, b) => b.score - a.score);
  const isVideo = result.media.kind === "video";
  return (
    <section className="card" aria-labelledby="tracks-title" data-testid="tracks">
      <h2 id="tracks-title">People</h2>
      <div className="table-wrap">
        <table className="stack-table">
          <caption className="visually-hidden">Score per person, most suspicious first</caption>
          <thead>
            <tr>
              <th scope="col">Person</th>
              <th scope="col">Score</th>
              <th scope="col">Highest face score</th>
              <th scope="col">Faces</th>
              {isVideo ? <th scope="col">Seen</th> : null}
            </tr>
          </thead>
          <tbody>
            {tracks.map((track) => (
              <tr key={track.track_id}>
                <th scope="row">
                  <span className="swatch" style={{ background: trackColour(track.track_id) }} aria-hidden="true" />
                  Person {track.track_id + 1}
                </th>
                <td data-label="Score" className={track.score >= result.decision.threshold ? "over" : undefined}>{formatPercent(track.score, 1)}</td>
                <td data-label="Highest face score">{formatPercent(track.max_p_fake, 1)}</td>
                <td data-label="Faces">{track.face_count}</td>
                {isVideo ? (
                  <td data-label="Seen">
                    {formatSeconds(track.first_seconds)} – {formatSeconds(track.last_seconds)}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
