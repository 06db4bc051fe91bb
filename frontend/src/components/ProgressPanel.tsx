import type { JobPublic } from "../api/client";
import type { LiveMode } from "../api/live";
import { describeStage, STAGE_ORDER } from "../lib/format";

export interface ProgressView {
  state: JobPublic["state"];
  stage: JobPublic["stage"];
  progress: number;
  queue_position: number | null;
}

const MODE_TEXT: Record<LiveMode, string> = {
  connecting: "Connecting…",
  live: "Live",
  polling: "Checking every few seconds",
  done: "Finished",
};

/** The job's state and pipeline stage while it waits or runs. */
export function ProgressPanel({ view, mode }: { view: ProgressView; mode: LiveMode }) {
  const current = view.stage ? STAGE_ORDER.indexOf(view.stage) : -1;
  const percent = Math.round(Math.min(Math.max(view.progress, 0), 100));
  const headline =
    view.state === "queued"
      ? view.queue_position
        ? `Waiting in the queue (position ${view.queue_position})`
        : "Waiting in the queue"
      : view.stage
        ? `${describeStage(view.stage)}…`
        : "Starting the analysis…";
  return (
    <section className="card" aria-labelledby="progress-title" data-testid="progress">
      <div className="row-between">
        <h2 id="progress-title">Analysing</h2>
        <span className={`badge badge-${mode}`} data-testid="live-mode">
          {MODE_TEXT[mode]}
        </span>
      </div>
      <p aria-live="polite" data-testid="progress-headline">
        {headline}
      </p>
      <progress className="bar" max={100} value={percent} aria-label="Analysis progress">
        {percent}%
      </progress>
      <p className="muted small">{percent}% done</p>
      <ol className="stages" aria-label="Stages">
        {STAGE_ORDER.map((stage, index) => {
          const status = view.state === "queued" || index > current ? "todo" : index < current ? "done" : "now";
          return (
            <li key={stage} className={`stage stage-${status}`} aria-current={status === "now" ? "step" : undefined}>
              <span className="stage-dot" aria-hidden="true" />
              {describeStage(stage)}
              <span className="visually-hidden">{status === "done" ? " (done)" : status === "now" ? " (in progress)" : ""}</span>
            </li>
          );
        })}
      </ol>
    </section>
  );
}
