/** Test data shaped like the API's answers (ml/contracts.py), built from defaults plus overrides. */
import type { AnalysisResult, Face, OperatingPoint } from "../api/client";

export function makeDecision(overrides: Partial<OperatingPoint> = {}): OperatingPoint {
  return {
    signal: "face_manipulation", media_kind: "image", aggregation: "trimmed_top", threshold: 0.6, inconclusive_threshold: 0.45,
    target_false_alarm_rate: 0.05, false_alarm_rate: 0.043, catch_rate: 0.61, calibration_set: "DFDC + LFW validation, checked on Celeb-DF",
    ...overrides,
  };
}

export function makeFace(overrides: Partial<Face> = {}): Face {
  return { frame_index: 0, timestamp_seconds: 0, box: [10, 10, 210, 230], detector_probability: 0.99, track_id: 0, p_fake: 0.2, p_synthetic: null, ...overrides };
}

export function makeResult(overrides: Partial<AnalysisResult> = {}): AnalysisResult {
  return {
    schema_version: "2.1",
    media: { kind: "image", format: "jpeg", width: 640, height: 480, rotation_degrees: 0 },
    frames: [{ index: 0, timestamp_seconds: 0, face_count: 1 }],
    faces: [makeFace()],
    tracks: [{ track_id: 0, face_count: 1, score: 0.2, max_p_fake: 0.2, synthetic_score: null, first_seconds: 0, last_seconds: 0 }],
    score: 0.2,
    label: "no_signs",
    predicted_manipulation: false,
    low_confidence: false,
    low_confidence_reasons: [],
    decision: makeDecision(),
    signals: [],
    aggregation: "trimmed_top",
    model: { model_id: "deepscreen-effnet-lite0", version: "1.0", sha256: "ab".repeat(32), architecture: "efficientnet_lite0", input_size: 224 },
    device: "cpu",
    stage_seconds: {},
    artifacts: [],
    notes: [],
    ...overrides,
  };
}
