import { describe, expect, it } from "vitest";

import { describeReason, describeVerdict, formatBytes, formatPercent, formatSeconds, normaliseLabel } from "./format";

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
