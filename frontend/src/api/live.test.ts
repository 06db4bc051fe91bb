import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

/** Stands in for the browser's EventSource; tests drive it by hand. */
class FakeEventSource {
  static instances: FakeEventSource[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: MessageEvent<string>) => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;

  constructor(readonly url: string) {
    FakeEventSource.instances.push(this);
  }

  close() {
    this.closed = true;
  }

  emit(data: object) {
    this.onmessage?.({ data: JSON.stringify(data) } as MessageEvent<string>);
  }
}

const served: object[] = [];
const requested: string[] = [];
const fetchMock = vi.fn(async (input: Request | string) => {
  requested.push(typeof input === "string" ? input : input.url);
  const body = served.shift();
  if (!body) return new Response(null, { status: 503 });
  return new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
});

vi.stubGlobal("location", { origin: "http://deepscreen.test" });
vi.stubGlobal("fetch", fetchMock);
vi.stubGlobal("EventSource", FakeEventSource);
const { followJob } = await import("./live");

function job(state: string, progress = 0, stage: string | null = null) {
  return { id: "j1", state, stage, progress, queue_position: null, links: { self: "/api/jobs/j1" } };
}

function follow() {
  const calls = { events: [] as object[], final: [] as object[], modes: [] as string[], errors: [] as unknown[] };
  const stop = followJob("j1", {
    onEvent: (event) => calls.events.push(event),
    onFinal: (final) => calls.final.push(final),
    onMode: (mode) => calls.modes.push(mode),
    onError: (error) => calls.errors.push(error),
  });
  return { calls, stop };
}

beforeEach(() => {
  vi.useFakeTimers();
  FakeEventSource.instances = [];
  served.length = 0;
  requested.length = 0;
  fetchMock.mockClear();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("followJob", () => {
  it("relays stream events, then reads the final job once the stream says it is final", async () => {
    const { calls } = follow();
    const source = FakeEventSource.instances[0]!;
    expect(source.url).toBe("/api/jobs/j1/events");
    source.onopen?.();
    source.emit({ job_id: "j1", state: "running", stage: "detecting", progress: 40 });
    expect(calls.events).toEqual([{ job_id: "j1", state: "running", stage: "detecting", progress: 40 }]);

    served.push(job("succeeded", 100, "saving"));
    source.emit({ job_id: "j1", state: "succeeded", stage: "saving", progress: 100 });
    await vi.runAllTimersAsync();

    expect(source.closed).toBe(true);
    expect(calls.final).toEqual([job("succeeded", 100, "saving")]);
    expect(calls.modes).toEqual(["connecting", "live", "done"]);
    expect(requested).toEqual(["http://deepscreen.test/api/jobs/j1"]);
  });

  it("falls back to polling the job when the stream fails, until it is final", async () => {
    const { calls } = follow();
    served.push(job("running", 10, "probing"), job("running", 55, "classifying"), job("failed", 60, "classifying"));
    FakeEventSource.instances[0]!.onerror?.();
    await vi.advanceTimersByTimeAsync(0);
    expect(FakeEventSource.instances[0]!.closed).toBe(true);
    expect(calls.modes).toContain("polling");

    await vi.advanceTimersByTimeAsync(1500);
    expect(calls.events).toEqual([{ job_id: "j1", state: "running", stage: "classifying", progress: 55, queue_position: null }]);
    await vi.advanceTimersByTimeAsync(1500);
    expect(calls.final).toEqual([job("failed", 60, "classifying")]);
    expect(calls.modes.at(-1)).toBe("done");

    await vi.advanceTimersByTimeAsync(10_000);
    expect(fetchMock).toHaveBeenCalledTimes(3);
  });

  it("keeps polling, more slowly, while the API is unreachable", async () => {
    const { calls } = follow();
    FakeEventSource.instances[0]!.onerror?.();
    await vi.advanceTimersByTimeAsync(0); // first read fails (503)
    await vi.advanceTimersByTimeAsync(1500); // second read fails
    expect(fetchMock).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1500); // back-off: nothing yet
    expect(fetchMock).toHaveBeenCalledTimes(2);
    served.push(job("succeeded", 100));
    await vi.advanceTimersByTimeAsync(1500);
    expect(calls.final).toHaveLength(1);
    expect(calls.errors.length).toBeGreaterThanOrEqual(2);
  });

  it("stops everything when the page goes away", async () => {
    const { calls, stop } = follow();
    FakeEventSource.instances[0]!.onerror?.();
    served.push(job("running", 10));
    await vi.advanceTimersByTimeAsync(0);
    stop();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(calls.final).toHaveLength(0);
  });
});
