"""Turn per-face probabilities into a score per track (person) and per file, and say how sure.

Torch-free and pure, so evaluation can replay strategies on stored face scores.

Strategies (`AGGREGATIONS`, chosen by `Aggregation` in `PipelineConfig.aggregation`):
- `mean`: the plain mean.
- `trimmed_top`: the mean of the top `TOP_FRACTION` of scores, as existing screening services
  do: a face swap that fails in a few frames still shows, one bad frame does not decide.
- `confident`: the Deepfake Detection Challenge winner's "confident strategy" (Selim
  Seferbekov): if many faces are confidently fake (p > 0.8) average only those; else if almost
  all are confidently real (p < 0.2) average those; else the mean.

The file score of a signal is the maximum over tracks that have enough faces: a video is as
manipulated as its most manipulated person, and a face seen in one or two frames (often a false
detection) does not decide. Each signal's score becomes one of three outcomes (`Label`) through
its `OperatingPoint`, whose thresholds were calibrated for a stated false-alarm rate per media
kind and aggregation; the file's label is the most severe signal's, or inconclusive when the
evidence is thin. The scores are always given.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ml.contracts import Aggregation, Face, Label, LowConfidenceReason, OperatingPoint, Signal, SignalResult, Track

TOP_FRACTION = 0.3
CONFIDENT_FAKE = 0.8
CONFIDENT_REAL = 0.2
CONFIDENT_FAKE_DIVISOR = 2.5
"""More than `count // 2.5` confident fakes make the confident strategy average only them."""
CONFIDENT_FAKE_MIN_SHARE = 11 / 32
"""The original also required more than 11 confident fakes out of 32 frames; scaled to the count."""
CONFIDENT_REAL_SHARE = 0.9

Strategy = Callable[[Sequence[float]], float]


def mean(scores: Sequence[float]) -> float:
    _require(scores)
    return math.fsum(scores) / len(scores)


def trimmed_top(scores: Sequence[float], fraction: float = TOP_FRACTION) -> float:
    """Mean of the highest `fraction` of scores (at least one)."""
    _require(scores)
    keep = max(1, math.ceil(len(scores) * fraction))
    return mean(sorted(scores, reverse=True)[:keep])


def confident(scores: Sequence[float]) -> float:
    """The DFDC winner's confident strategy (see the module docstring)."""
    _require(scores)
    count = len(scores)
    fakes = [s for s in scores if s > CONFIDENT_FAKE]
    if len(fakes) > count // CONFIDENT_FAKE_DIVISOR and len(fakes) > CONFIDENT_FAKE_MIN_SHARE * count:
        return mean(fakes)
    reals = [s for s in scores if s < CONFIDENT_REAL]
    if len(reals) > CONFIDENT_REAL_SHARE * count:
        return mean(reals)
    return mean(scores)


AGGREGATIONS: dict[Aggregation, Strategy] = {
    Aggregation.mean: mean, Aggregation.trimmed_top: trimmed_top, Aggregation.confident: confident,
}


def _require(scores: Sequence[float]) -> None:
    if not scores:
        raise ValueError("Cannot aggregate an empty list of scores.")


SEVERITY = (Label.no_signs, Label.inconclusive, Label.manipulated)


@dataclass(frozen=True)
class Decision:
    """The file-level outcome; `deciding_track` is the track whose face-manipulation score became the file's."""

    score: float | None
    label: Label
    low_confidence_reasons: list[LowConfidenceReason]
    deciding_track: int | None
    signals: list[SignalResult]
    notes: list[str] = field(default_factory=list)

    @property
    def low_confidence(self) -> bool:
        return bool(self.low_confidence_reasons)

    @property
    def predicted_manipulation(self) -> bool | None:
        return None if self.label is Label.inconclusive else self.label is Label.manipulated


def score_tracks(faces: Sequence[Face], method: Aggregation) -> list[Track]:
    """One `Track` per track id in `faces`, every signal scored with the strategy `method`."""
    strategy = AGGREGATIONS[method]
    by_track: dict[int, list[Face]] = {}
    for face in faces:
        by_track.setdefault(face.track_id, []).append(face)
    tracks = []
    for track_id in sorted(by_track):
        members = by_track[track_id]
        scores = [f.p_fake for f in members]
        synthetic = [f.p_synthetic for f in members if f.p_synthetic is not None]
        tracks.append(Track(
            track_id=track_id, face_count=len(members), score=strategy(scores), max_p_fake=max(scores),
            synthetic_score=strategy(synthetic) if len(synthetic) == len(members) else None,
            first_seconds=min(f.timestamp_seconds for f in members),
            last_seconds=max(f.timestamp_seconds for f in members),
        ))
    return tracks


def outcome(score: float, point: OperatingPoint) -> Label:
    """The three-way outcome of one score under one operating point."""
    if score >= point.threshold:
        return Label.manipulated
    if score >= point.inconclusive_threshold:
        return Label.inconclusive
    return Label.no_signs


def track_signal_score(track: Track, signal: Signal) -> float | None:
    return track.score if signal is Signal.face_manipulation else track.synthetic_score


def decide(
    faces: Sequence[Face],
    tracks: Sequence[Track],
    *,
    points: Mapping[Signal, OperatingPoint],
    sampled_frames: int,
    min_track_faces: int,
    disagreement_std: float,
) -> Decision:
    """File score, label and low-confidence reasons from scored tracks.

    `points` holds the operating point of every signal the model has; face manipulation is required.
    A track counts when it has at least `min(min_track_faces, sampled_frames)` faces. With none
    counting, the best track still gives a score but the result is flagged `too_few_faces`.
    `scores_disagree` is raised when the deciding track's face scores spread with a standard
    deviation above `disagreement_std` (e.g. half the frames say fake, half real). Different
    tracks disagreeing is not flagged: a swap often replaces one person and leaves another.
    Either reason makes the file inconclusive; otherwise the most severe signal decides, and a
    score inside a signal's inconclusive band adds `borderline`.
    """
    manipulation = points[Signal.face_manipulation]
    if not faces or not tracks:
        signals = [SignalResult(signal=signal, score=None, label=Label.inconclusive, operating_point=point)
                   for signal, point in points.items()]
        return Decision(None, Label.inconclusive, [LowConfidenceReason.no_face_found], None, signals,
                        ["No face was found in the sampled frames."])
    reasons: list[LowConfidenceReason] = []
    notes: list[str] = []
    needed = max(1, min(min_track_faces, sampled_frames))
    counted = [t for t in tracks if t.face_count >= needed]
    if not counted:
        reasons.append(LowConfidenceReason.too_few_faces)
        notes.append(f"No person was seen in at least {needed} sampled frames; the score rests on few faces.")
        counted = list(tracks)
    deciding = max(counted, key=lambda t: (t.score, t.face_count))
    scores = [f.p_fake for f in faces if f.track_id == deciding.track_id]
    spread = statistics.pstdev(scores) if len(scores) > 1 else 0.0
    if spread > disagreement_std:
        reasons.append(LowConfidenceReason.scores_disagree)
        notes.append(f"Face scores of track {deciding.track_id} disagree (standard deviation {spread:.2f}).")
    signals = [SignalResult(signal=Signal.face_manipulation, score=deciding.score,
                            label=outcome(deciding.score, manipulation), operating_point=manipulation)]
    for signal, point in points.items():
        if signal is Signal.face_manipulation:
            continue
        values = [v for t in counted if (v := track_signal_score(t, signal)) is not None]
        if values:
            signals.append(SignalResult(signal=signal, score=max(values), label=outcome(max(values), point),
                                        operating_point=point))
    if reasons:
        return Decision(deciding.score, Label.inconclusive, reasons, deciding.track_id, signals, notes)
    label = max((s.label for s in signals), key=SEVERITY.index)
    if label is Label.inconclusive:
        reasons.append(LowConfidenceReason.borderline)
    return Decision(deciding.score, label, reasons, deciding.track_id, signals, notes)
