import type { AnalysisResult, ShownJob } from "../api/client";
import { Gallery } from "./Gallery";
import { Timeline } from "./Timeline";
import { TrackTable } from "./TrackTable";
import { VerdictCard } from "./VerdictCard";

/** A finished analysis as the owner and a share link's reader both see it. */
export function ResultView({ job, result }: { job: ShownJob; result: AnalysisResult }) {
  return (
    <>
      <VerdictCard job={job} result={result} />
      {result.media.kind === "video" ? <Timeline result={result} /> : null}
      <Gallery job={job} result={result} />
      <TrackTable result={result} />
    </>
  );
}
