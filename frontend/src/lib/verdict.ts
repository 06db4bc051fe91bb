/**
 * The calibrated decision as the pages show it: which jobs have a verdict, when a score is a
 * close call, where the score bar's labelled ticks go, and what the threshold was calibrated for.
 * Pure, so it is unit-tested without a browser.
 */
import type { AnalysisResult, JobPublic, Label, OperatingPoint } from "../api/client";
import { formatPercent } from "./format";

/**
 * The result a page shows as a verdict, or null. A file in which no face was found was still
 * analysed: the API marks it succeeded with an inconclusive result (`no_face_found` reason).
 */
export function verdictResult(job: Pick<JobPublic, "state" | "result">): AnalysisResult | null {
  return job.state === "succeeded" ? (job.result ?? null) : null;
}

/** A score this close to the threshold (above or below) is called borderline, even outside an inconclusive band. */
export const BORDERLINE_MARGIN = 0.05;

export type BorderlineKind = "in_band" | "near_threshold";

/**
 * Why a score is a close call, or null. `in_band`: between the inconclusive and the manipulation
 * threshold (the pipeline's `borderline` reason). `near_threshold`: within `BORDERLINE_MARGIN` of
 * the threshold, so a small change in the file could flip the outcome.
 */
export function borderline(result: Pick<AnalysisResult, "score" | "decision" | "low_confidence_reasons">): BorderlineKind | null {
  const { score, decision } = result;
  if ((result.low_confidence_reasons ?? []).includes("borderline")) return "in_band";
  if (score === null || score === undefined) return null;
  if (decision.inconclusive_threshold < decision.threshold && score >= decision.inconclusive_threshold && score < decision.threshold) {
    return "in_band";
  }
  return Math.abs(score - decision.threshold) < BORDERLINE_MARGIN ? "near_threshold" : null;
}

export type TickRow = "above" | "below";
export type TickAlign = "start" | "middle" | "end";

export interface GaugeTick {
  kind: "threshold" | "inconclusive";
  /** 0–1 along the bar. */
  position: number;
  text: string;
  /** The threshold's label sits above the bar and the inconclusive one below, so they never overlap however close. */
  row: TickRow;
  /** Labels near an end of the bar grow inwards instead of running off it. */
  align: TickAlign;
}

const EDGE = 0.22;

function clamp01(value: number): number {
  return Math.min(Math.max(value, 0), 1);
}

function alignFor(position: number): TickAlign {
  if (position < EDGE) return "start";
  if (position > 1 - EDGE) return "end";
  return "middle";
}

/** The score bar's labelled ticks: the manipulation threshold, and the inconclusive one when there is a band. */
export function gaugeTicks(decision: Pick<OperatingPoint, "threshold" | "inconclusive_threshold">): GaugeTick[] {
  const threshold = clamp01(decision.threshold);
  const ticks: GaugeTick[] = [
    { kind: "threshold", position: threshold, text: `Manipulation ≥ ${formatPercent(threshold, 1)}`, row: "above", align: alignFor(threshold) },
  ];
  if (decision.inconclusive_threshold < decision.threshold) {
    const band = clamp01(decision.inconclusive_threshold);
    ticks.push({ kind: "inconclusive", position: band, text: `Inconclusive ≥ ${formatPercent(band, 1)}`, row: "below", align: alignFor(band) });
  }
  return ticks;
}

/**
 * What the thresholds were calibrated for, in sentences, from the operating point alone: a
 * figure the calibration did not state is not invented.
 */
export function calibrationSentences(decision: OperatingPoint): string[] {
  const sentences: string[] = [];
  if (decision.target_false_alarm_rate !== null && decision.target_false_alarm_rate !== undefined) {
    sentences.push(
      `The threshold was set so that at most ${formatPercent(decision.target_false_alarm_rate, 1)} of real media would be flagged as manipulated.`,
    );
  } else {
    sentences.push("The threshold was not set for a stated false-alarm rate.");
  }
  const measured: string[] = [];
  if (decision.false_alarm_rate !== null && decision.false_alarm_rate !== undefined) {
    measured.push(`flagged ${formatPercent(decision.false_alarm_rate, 1)} of real media`);
  }
  if (decision.catch_rate !== null && decision.catch_rate !== undefined) {
    measured.push(`caught ${formatPercent(decision.catch_rate, 1)} of manipulated media`);
  }
  if (measured.length > 0) sentences.push(`On media not used to set it, it ${measured.join(" and ")}.`);
  if (decision.inconclusive_threshold >= decision.threshold) sentences.push("There is no inconclusive band around it.");
  sentences.push(`Where the thresholds come from: ${decision.calibration_set.trim().replace(/\.$/, "")}.`);
  return sentences;
}

/** The CSS class suffix of an outcome (colours in styles.css). */
export const LABEL_TONE: Record<Label, "positive" | "neutral" | "negative"> = {
  no_signs: "positive",
  inconclusive: "neutral",
  manipulated: "negative",
};

// The pipeline's notes that restate a low-confidence reason (ml/aggregate.py), and the API's
// reuse note (core/jobs/service.py): the page says each of these once, in its own words.
const RESTATED: RegExp[] = [/^No face was found/, /^No person was seen in at least/, /^Face scores of track/, /^Result reused from job/];

/** The result's notes that add something to what the verdict card already says. */
export function extraNotes(result: Pick<AnalysisResult, "notes">): string[] {
  return (result.notes ?? []).filter((note) => !RESTATED.some((pattern) => pattern.test(note)));
}
