import { describe, expect, it } from "vitest";

import { makeFace, makeResult } from "../test/factories";
import { bitsPerPixel, weakSpotsFor } from "./limits";

const synthetic = [{ signal: "synthetic_face" as const, score: 0.1, label: "no_signs" as const, operating_point: makeResult().decision }];

describe("weakSpotsFor", () => {
  it("names no weak spot for a large, lightly compressed face when a synthetic-face check ran", () => {
    expect(weakSpotsFor(makeResult({ signals: synthetic }), 200_000)).toEqual([]);
  });
  it("says fully synthetic faces are untested when the model has no such signal", () => {
    expect(weakSpotsFor(makeResult(), 200_000).map((spot) => spot.spot)).toEqual(["synthetic_faces"]);
  });
  it("flags small faces", () => {
    const result = makeResult({ signals: synthetic, faces: [makeFace({ box: [0, 0, 60, 70] })] });
    const spots = weakSpotsFor(result, 200_000);
    expect(spots.map((spot) => spot.spot)).toEqual(["low_resolution_faces"]);
    expect(spots[0]?.text).toContain("about 60 px wide");
  });
  it("names none when no face was scored, and never calls a lossless image compressed", () => {
    expect(weakSpotsFor(makeResult({ score: null, faces: [], label: "inconclusive" }), 200)).toEqual([]);
    const png = makeResult({ media: { kind: "image", format: "png", width: 640, height: 480, rotation_degrees: 0 } });
    expect(bitsPerPixel(png, 2_000)).toBeNull();
    expect(bitsPerPixel(makeResult(), 2_000)).toBeCloseTo(0.052, 3);
  });
  it("flags strong compression of a video, per frame pixel", () => {
    const media = { kind: "video" as const, format: "mp4", width: 1920, height: 1080, fps: 30, duration_seconds: 10, rotation_degrees: 0 };
    const result = makeResult({ signals: synthetic, media });
    expect(bitsPerPixel(result, 2_800_000)).toBeCloseTo(0.036, 3);
    expect(weakSpotsFor(result, 2_800_000).map((spot) => spot.spot)).toEqual(["heavy_compression"]);
    expect(weakSpotsFor(result, 8_000_000)).toEqual([]);
  });
});
