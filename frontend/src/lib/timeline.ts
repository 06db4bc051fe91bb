/** Geometry for the face-score timeline, pure so it is tested without a browser. */

export interface TimelinePoint {
  t: number;
  p: number;
  track: number;
}

export interface TimelineLayout {
  width: number;
  height: number;
  padLeft: number;
  padRight: number;
  padTop: number;
  padBottom: number;
  duration: number;
}

export function makeLayout(duration: number | null | undefined, points: TimelinePoint[], width = 640, height = 220): TimelineLayout {
  const lastPoint = points.reduce((max, point) => Math.max(max, point.t), 0);
  const span = Math.max(duration ?? 0, lastPoint, 0.001);
  return { width, height, padLeft: 44, padRight: 12, padTop: 12, padBottom: 34, duration: span };
}

export function xFor(layout: TimelineLayout, t: number): number {
  const inner = layout.width - layout.padLeft - layout.padRight;
  return layout.padLeft + (Math.min(Math.max(t, 0), layout.duration) / layout.duration) * inner;
}

export function yFor(layout: TimelineLayout, p: number): number {
  const inner = layout.height - layout.padTop - layout.padBottom;
  return layout.padTop + (1 - Math.min(Math.max(p, 0), 1)) * inner;
}

/** About five round tick values from 0 to the duration (seconds). */
export function timeTicks(duration: number, target = 5): number[] {
  if (duration <= 0) return [0];
  const raw = duration / target;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = 0; t <= duration + step * 1e-9; t += step) ticks.push(Number(t.toFixed(6)));
  return ticks;
}

/** Points of one track joined in time order, as an SVG path. */
export function trackPath(layout: TimelineLayout, points: TimelinePoint[]): string {
  return [...points]
    .sort((a, b) => a.t - b.t)
    .map((point, i) => `${i === 0 ? "M" : "L"}${xFor(layout, point.t).toFixed(1)},${yFor(layout, point.p).toFixed(1)}`)
    .join(" ");
}

const PALETTE = ["#2563eb", "#d97706", "#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#dc2626"];

export function trackColour(track: number): string {
  return PALETTE[((track % PALETTE.length) + PALETTE.length) % PALETTE.length] ?? "#2563eb";
}
