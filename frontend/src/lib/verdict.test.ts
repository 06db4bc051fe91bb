import { describe, expect, it } from "vitest";

import { makeDecision, makeResult } from "../test/factories";
import { borderline, calibrationSentences, extraNotes, gaugeTicks, verdictResult } from "./verdict";

describe("verdictResult", () => {
  const result = makeResult({ label: "inconclusive", score: null, low_confidence_reasons: ["no_face_found"] });
  it("treats a no-face file as analysed (inconclusive), not as a failure", () => {
    expect(verdictResult({ state: "succeeded", result })).toBe(result);
  });
  it("shows no verdict for a real failure, a canceled job or a job without a result", () => {
    expect(verdictResult({ state: "failed", result })).toBeNull();
    expect(verdictResult({ state: "canceled", result })).toBeNull();
    expect(verdictResult({ state: "succeeded", result: null })).toBeNull();
  });
});

describe("borderline", () => {
  it("marks a score inside the inconclusive band", () => {
    expect(borderline(makeResult({ score: 0.5, label: "inconclusive", low_confidence_reasons: ["borderline"] }))).toBe("in_band");
    expect(borderline(makeResult({ score: 0.5, label: "inconclusive" }))).toBe("in_band");
  });
  it("marks a score just over a threshold without a band, as in the issue (62.4% against 61.4%)", () => {
    const decision = makeDecision({ threshold: 0.614, inconclusive_threshold: 0.614 });
    expect(borderline(makeResult({ score: 0.624, label: "manipulated", decision }))).toBe("near_threshold");
    expect(borderline(makeResult({ score: 0.98, label: "manipulated", decision }))).toBeNull();
    expect(borderline(makeResult({ score: 0.1, decision }))).toBeNull();
    expect(borderline(makeResult({ score: null, label: "inconclusive", decision }))).toBeNull();
  });
});

describe("gaugeTicks", () => {
  it("labels both thresholds on different rows, so close ticks cannot overlap", () => {
    const ticks = gaugeTicks(makeDecision({ threshold: 0.614, inconclusive_threshold: 0.6 }));
    expect(ticks.map((tick) => [tick.kind, tick.row])).toEqual([["threshold", "above"], ["inconclusive", "below"]]);
    expect(ticks[0]?.text).toBe("Manipulation ≥ 61.4%");
    expect(ticks[1]?.text).toBe("Inconclusive ≥ 60.0%");
  });
  it("draws one tick without a band and keeps labels near the ends on the bar", () => {
    expect(gaugeTicks(makeDecision({ threshold: 0.5, inconclusive_threshold: 0.5 }))).toHaveLength(1);
    expect(gaugeTicks(makeDecision({ threshold: 0.95, inconclusive_threshold: 0.1 })).map((tick) => tick.align)).toEqual(["end", "start"]);
  });
});

describe("calibrationSentences", () => {
  it("states the false-alarm rate the threshold was set for and the measured rates", () => {
    const text = calibrationSentences(makeDecision()).join(" ");
    expect(text).toContain("at most 5.0% of real media");
    expect(text).toContain("flagged 4.3% of real media and caught 61.0% of manipulated media");
    expect(text).toContain("Where the thresholds come from: DFDC + LFW validation, checked on Celeb-DF.");
  });
  it("invents no figure an uncalibrated threshold does not have", () => {
    const decision = makeDecision({ target_false_alarm_rate: null, false_alarm_rate: null, catch_rate: null, inconclusive_threshold: 0.6, calibration_set: "uncalibrated" });
    const text = calibrationSentences(decision).join(" ");
    expect(text).toContain("not set for a stated false-alarm rate");
    expect(text).not.toMatch(/\d%/);
  });
});

describe("extraNotes", () => {
  it("drops the notes that restate a reason or the reuse, keeps the rest", () => {
    const notes = [
      "No face was found in the sampled frames.",
      "Face scores of track 0 disagree (standard deviation 0.31).",
      "Result reused from job abc: same file and model.",
      "Explanations stopped after 1 of 3 faces: the 5 s budget ran out.",
    ];
    expect(extraNotes(makeResult({ notes }))).toEqual(["Explanations stopped after 1 of 3 faces: the 5 s budget ran out."]);
  });
});
