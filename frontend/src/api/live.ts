/**
 * Follows a job until it reaches a final state: Server-Sent Events from
 * `GET /api/jobs/{id}/events` first, and polling `GET /api/jobs/{id}` by itself when the event
 * stream cannot be opened or breaks (an old proxy, a firewall, a restarted API replica).
 */
import { FINAL_STATES, getJob, type JobPublic, type Schemas } from "./client";
import { withJobToken } from "./credentials";

export type JobEvent = Schemas["JobEvent"];
export type LiveMode = "connecting" | "live" | "polling" | "done";

export interface FollowHandlers {
  /** A progress update; merge it into the job on screen. */
  onEvent: (event: JobEvent) => void;
  /** The full job once it is final (re-read, so the result is included). */
  onFinal: (job: JobPublic) => void;
  onMode?: (mode: LiveMode) => void;
  onError?: (error: unknown) => void;
}

export interface FollowOptions {
  pollIntervalMs?: number;
  maxPollIntervalMs?: number;
  /** Skip the event stream (tests, or browsers without EventSource). */
  forcePolling?: boolean;
}

export function eventsUrl(jobId: string): string {
  return withJobToken(`/api/jobs/${encodeURIComponent(jobId)}/events`, jobId);
}

/** Starts following; returns a function that stops everything. */
export function followJob(jobId: string, handlers: FollowHandlers, options: FollowOptions = {}): () => void {
  const pollBase = options.pollIntervalMs ?? 1500;
  const pollMax = options.maxPollIntervalMs ?? 10_000;
  let stopped = false;
  let source: EventSource | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const controller = new AbortController();

  const setMode = (mode: LiveMode) => {
    if (!stopped) handlers.onMode?.(mode);
  };

  /** Hands a final job to `onFinal` and stops following; false while the job is still going. */
  const settle = (job: Awaited<ReturnType<typeof getJob>>): boolean => {
    if (!FINAL_STATES.has(job.state)) return false;
    setMode("done");
    stopped = true;
    handlers.onFinal(job);
    return true;
  };

  const finish = async () => {
    source?.close();
    source = null;
    try {
      const job = await getJob(jobId, controller.signal);
      if (stopped || settle(job)) return;
    } catch (exc) {
      if (stopped) return;
      handlers.onError?.(exc);
    }
    startPolling();
  };

  const startPolling = (interval = pollBase) => {
    if (stopped) return;
    setMode("polling");
    timer = setTimeout(async () => {
      try {
        const job = await getJob(jobId, controller.signal);
        if (stopped || settle(job)) return;
        handlers.onEvent({
          job_id: job.id,
          state: job.state,
          stage: job.stage,
          progress: job.progress,
          queue_position: job.queue_position,
        });
        startPolling(pollBase);
      } catch (exc) {
        if (stopped) return;
        handlers.onError?.(exc);
        startPolling(Math.min(interval * 2, pollMax));
      }
    }, interval);
  };

  if (options.forcePolling || typeof EventSource === "undefined") {
    startPolling(0);
  } else {
    setMode("connecting");
    source = new EventSource(eventsUrl(jobId), { withCredentials: true });
    source.onopen = () => setMode("live");
    source.onmessage = (message: MessageEvent<string>) => {
      let event: JobEvent;
      try {
        event = JSON.parse(message.data) as JobEvent;
      } catch {
        return;
      }
      if (FINAL_STATES.has(event.state)) {
        void finish();
      } else {
        handlers.onEvent(event);
      }
    };
    source.onerror = () => {
      // EventSource would retry on its own, but a stream that fails once (proxy without streaming,
      // 404, replica restart) is cheaper to replace by polling than to hammer; the poll ends the
      // same way, with the final job.
      if (stopped) return;
      source?.close();
      source = null;
      void finish();
    };
  }

  return () => {
    stopped = true;
    source?.close();
    controller.abort();
    if (timer !== null) clearTimeout(timer);
  };
}
