import { describe, expect, it } from "vitest";

import { makeLayout, timeTicks, trackPath, xFor, yFor } from "./timeline";

describe("timeline geometry", () => {
  const layout = makeLayout(10, [{ t: 2, p: 0.5, track: 0 }], 200, 100);

  it("maps time to x inside the padding", () => {
    expect(xFor(layout, 0)).toBe(layout.padLeft);
    expect(xFor(layout, 10)).toBe(200 - layout.padRight);
    expect(xFor(layout, 99)).toBe(200 - layout.padRight);
  });

  it("puts probability 1 at the top and 0 at the bottom", () => {
    expect(yFor(layout, 1)).toBe(layout.padTop);
    expect(yFor(layout, 0)).toBe(100 - layout.padBottom);
  });

  it("stretches the axis to the last face when the duration is unknown", () => {
    expect(makeLayout(null, [{ t: 7, p: 0.1, track: 1 }]).duration).toBe(7);
  });

  it("picks round ticks", () => {
    expect(timeTicks(10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(timeTicks(0)).toEqual([0]);
  });

  it("joins a track in time order", () => {
    const path = trackPath(layout, [
      { t: 5, p: 0, track: 0 },
      { t: 0, p: 1, track: 0 },
    ]);
    expect(path.startsWith(`M${layout.padLeft.toFixed(1)},${layout.padTop.toFixed(1)}`)).toBe(true);
    expect(path.split(" ")).toHaveLength(2);
  });
});
