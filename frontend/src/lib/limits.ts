/**
 * The model's known weak spots, from docs/model-card.md ("Known failure modes", "Out of scope"),
 * each with the test of whether it applies to one result. The tests are rough on purpose and
 * err towards showing the warning: a reviewer reads "may" as "look closer", never as a finding.
 */
import type { AnalysisResult } from "../api/client";
import { corners } from "./format";

export type WeakSpot = "low_resolution_faces" | "synthetic_faces" | "heavy_compression";

/** Faces narrower than this share of the model's input side are enlarged more than twice before scoring. */
export const LOW_RESOLUTION_SHARE = 0.5;
/**
 * Bits per pixel below which a file counts as strongly compressed. Video: per pixel of every
 * frame (the DFDC clips the model is weakest on carry 0.036–0.045; FaceForensics++ 0.052,
 * Celeb-DF 0.08). Image: per pixel (LFW JPEGs carry about 2.5, DFDC face crops 0.7).
 */
export const LOW_BITS_PER_PIXEL = { video: 0.04, image: 0.5 } as const;

export interface WeakSpotFinding {
  spot: WeakSpot;
  title: string;
  text: string;
}

const TITLES: Record<WeakSpot, string> = {
  low_resolution_faces: "Small, low-resolution faces",
  synthetic_faces: "Faces generated whole",
  heavy_compression: "Strong compression",
};

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** Image formats whose compression loses detail; a lossless PNG of a plain picture is small without losing any. */
const LOSSY_IMAGE_FORMATS = new Set(["jpeg", "jpg", "mpo", "webp"]);

/** Bits per pixel of the file (per frame pixel for a video), or null for a lossless image or when the media does not say enough. */
export function bitsPerPixel(result: Pick<AnalysisResult, "media">, sizeBytes: number): number | null {
  const { media } = result;
  const pixels = media.width * media.height;
  if (pixels <= 0 || sizeBytes <= 0) return null;
  if (media.kind === "image") return LOSSY_IMAGE_FORMATS.has(media.format.toLowerCase()) ? (sizeBytes * 8) / pixels : null;
  const frames = media.frame_count ?? (media.fps && media.duration_seconds ? media.fps * media.duration_seconds : null);
  return frames ? (sizeBytes * 8) / (pixels * frames) : null;
}

/** The weak spots that apply to this result, most relevant first; none without a score (no face was scored). */
export function weakSpotsFor(result: AnalysisResult, sizeBytes: number): WeakSpotFinding[] {
  const found: WeakSpotFinding[] = [];
  if (result.score === null || result.score === undefined) return found;
  const sides = result.faces.map((face) => {
    const [x1, y1, x2, y2] = corners(face.box);
    return Math.min(x2 - x1, y2 - y1);
  });
  if (sides.length > 0) {
    const typical = median(sides);
    if (typical < result.model.input_size * LOW_RESOLUTION_SHARE) {
      found.push({
        spot: "low_resolution_faces",
        title: TITLES.low_resolution_faces,
        text:
          `The faces are about ${Math.round(typical)} px wide and were enlarged to the model's ${result.model.input_size} px input. ` +
          "Small faces carry little evidence; manipulations in them are often missed.",
      });
    }
  }
  const bpp = bitsPerPixel(result, sizeBytes);
  if (bpp !== null && bpp < LOW_BITS_PER_PIXEL[result.media.kind]) {
    found.push({
      spot: "heavy_compression",
      title: TITLES.heavy_compression,
      text:
        `The file carries about ${bpp.toFixed(bpp < 0.1 ? 3 : 2)} bits per pixel${result.media.kind === "video" ? " per frame" : ""}. ` +
        "Strong compression wipes out the fine traces the model looks for, so a low score means less.",
    });
  }
  if (!(result.signals ?? []).some((signal) => signal.signal === "synthetic_face")) {
    found.push({
      spot: "synthetic_faces",
      title: TITLES.synthetic_faces,
      text:
        "Faces generated whole by a GAN or diffusion model (no real person behind them) were not in the training data. " +
        "This model does not test for them, so a low score says nothing about them.",
    });
  }
  return found;
}
