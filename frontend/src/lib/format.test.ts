import { describe, expect, it } from "vitest";

import { analysisSeconds, describeAggregation, describeError, describeJobState, describeReason, describeVerdict, formatBytes, formatPercent, formatSeconds, normaliseLabel } from "./format";

describe("describeReason", () => {
  it("explains known codes in plain words", () => {
    expect(describeReason("no_face_found")).toMatch(/No face was found/);
  });
  it("turns unknown codes into a readable sentence instead of hiding them", () => {
    expect(describeReason("motion_blur_heavy")).toBe("Motion blur heavy.");
  });
});

describe("verdicts", () => {
  it("never calls an unknown label real or fake", () => {
    expect(normaliseLabel("something")).toBe("inconclusive");
    expect(normaliseLabel(null)).toBe("inconclusive");
    expect(describeVerdict("no_signs").summary).toMatch(/does not prove/);
  });
});

describe("formatting", () => {
  it("formats percent, seconds and bytes", () => {
    expect(formatPercent(0.4567, 1)).toBe("45.7%");
    expect(formatPercent(null)).toBe("–");
    expect(formatSeconds(3.21)).toBe("3.2 s");
    expect(formatSeconds(125)).toBe("2 min 05 s");
    expect(formatBytes(2_500_000)).toBe("2.4 MB");
    expect(formatBytes(12)).toBe("12 B");
  });
});

describe("one vocabulary", () => {
  it("names the three outcomes the same way everywhere, without 'fake' or 'uncertain'", () => {
    expect(describeVerdict("manipulated").title).toBe("Signs of manipulation");
    expect(describeVerdict("inconclusive").title).toBe("Inconclusive");
    expect(describeVerdict("no_signs").title).toBe("No signs of manipulation found");
    const all = JSON.stringify([describeVerdict("manipulated"), describeVerdict("inconclusive"), describeVerdict("no_signs")]);
    expect(all).not.toMatch(/\bfake\b|uncertain|likely/i);
  });
  it("words every low-confidence reason, aggregation and job state without code names", () => {
    expect(describeReason("borderline")).toMatch(/between the inconclusive and the manipulation threshold/);
    expect(describeAggregation("trimmed_top")).not.toContain("_");
    expect(describeJobState("failed", true)).toBe("Finished");
    expect(describeJobState("failed", false)).toBe("Failed");
    expect(describeError("unavailable")).toMatch(/temporarily unavailable/);
  });
});

describe("analysisSeconds", () => {
  it("is the pipeline's total, not the sum of the stages and the total (issue 14: 28 s shown, 14 s real)", () => {
    expect(analysisSeconds({ probing: 1, detecting: 6, classifying: 7, total: 14 })).toBe(14);
  });
  it("sums the stages of a result without a total, and is unknown without timings", () => {
    expect(analysisSeconds({ probing: 1, detecting: 2 })).toBe(3);
    expect(analysisSeconds({})).toBeNull();
    expect(analysisSeconds(undefined)).toBeNull();
  });
});
