"""Turn per-face probabilities into a score per track (person) and per file, and say how sure.

Torch-free and pure, so evaluation can replay strategies on stored face scores.

Strategies (`AGGREGATIONS`, chosen by name in `PipelineConfig.aggregation`):
- `mean`: the plain mean.
- `trimmed_top`: the mean of the top `TOP_FRACTION` of scores, as existing screening services
  do: a face swap that fails in a few frames still shows, one bad frame does not decide.
- `confident`: the Deepfake Detection Challenge winner's "confident strategy" (Selim
  Seferbekov): if many faces are confidently fake (p > 0.8) average only those; else if almost
  all are confidently real (p < 0.2) average those; else the mean.

The file score is the maximum over tracks that have enough faces: a video is as manipulated as
its most manipulated person, and a face seen in one or two frames (often a false detection) does
not decide. The label comes from the checkpoint's threshold and nothing else; when confidence is
low the label is 'uncertain' and `predicted_manipulation` is None, but the score is still given.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ml.contracts import Face, Track

TOP_FRACTION = 0.3
CONFIDENT_FAKE = 0.8
CONFIDENT_REAL = 0.2
CONFIDENT_FAKE_DIVISOR = 2.5
"""More than `count // 2.5` confident fakes make the confident strategy average only them."""
CONFIDENT_FAKE_MIN_SHARE = 11 / 32
"""The original also required more than 11 confident fakes out of 32 frames; scaled to the count."""
CONFIDENT_REAL_SHARE = 0.9

NO_FACE_FOUND = "no_face_found"
TOO_FEW_FACES = "too_few_faces"
SCORES_DISAGREE = "scores_disagree"

Aggregation = Callable[[Sequence[float]], float]


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


AGGREGATIONS: dict[str, Aggregation] = {"mean": mean, "trimmed_top": trimmed_top, "confident": confident}


def _require(scores: Sequence[float]) -> None:
    if not scores:
        raise ValueError("Cannot aggregate an empty list of scores.")


@dataclass(frozen=True)
class Verdict:
    """The file-level outcome; `deciding_track` is the track whose score became the file's."""

    score: float | None
    label: str
    predicted_manipulation: bool | None
    low_confidence_reasons: list[str]
    deciding_track: int | None
    notes: list[str] = field(default_factory=list)

    @property
    def low_confidence(self) -> bool:
        return bool(self.low_confidence_reasons)


def score_tracks(faces: Sequence[Face], method: str) -> list[Track]:
    """One `Track` per track id in `faces`, scored with the strategy `method`."""
    strategy = AGGREGATIONS[method]
    by_track: dict[int, list[Face]] = {}
    for face in faces:
        by_track.setdefault(face.track_id, []).append(face)
    tracks = []
    for track_id in sorted(by_track):
        members = by_track[track_id]
        scores = [f.p_fake for f in members]
        tracks.append(Track(
            track_id=track_id, face_count=len(members), score=strategy(scores), max_p_fake=max(scores),
            first_seconds=min(f.timestamp_seconds for f in members),
            last_seconds=max(f.timestamp_seconds for f in members),
        ))
    return tracks


def decide(
    faces: Sequence[Face],
    tracks: Sequence[Track],
    *,
    threshold: float,
    sampled_frames: int,
    min_track_faces: int,
    disagreement_std: float,
) -> Verdict:
    """File score, label and low-confidence reasons from scored tracks.

    A track counts when it has at least `min(min_track_faces, sampled_frames)` faces. With none
    counting, the best track still gives a score but the result is flagged `too_few_faces`.
    `scores_disagree` is raised when the deciding track's face scores spread with a standard
    deviation above `disagreement_std` (e.g. half the frames say fake, half real). Different
    tracks disagreeing is not flagged: a swap often replaces one person and leaves another.
    """
    if not faces or not tracks:
        return Verdict(None, "uncertain", None, [NO_FACE_FOUND], None, ["No face was found in the sampled frames."])
    reasons: list[str] = []
    notes: list[str] = []
    needed = max(1, min(min_track_faces, sampled_frames))
    counted = [t for t in tracks if t.face_count >= needed]
    if not counted:
        reasons.append(TOO_FEW_FACES)
        notes.append(f"No person was seen in at least {needed} sampled frames; the score rests on few faces.")
        counted = list(tracks)
    deciding = max(counted, key=lambda t: (t.score, t.face_count))
    scores = [f.p_fake for f in faces if f.track_id == deciding.track_id]
    spread = statistics.pstdev(scores) if len(scores) > 1 else 0.0
    if spread > disagreement_std:
        reasons.append(SCORES_DISAGREE)
        notes.append(f"Face scores of track {deciding.track_id} disagree (standard deviation {spread:.2f}).")
    if reasons:
        return Verdict(deciding.score, "uncertain", None, reasons, deciding.track_id, notes)
    fake = deciding.score >= threshold
    return Verdict(deciding.score, "fake" if fake else "real", fake, [], deciding.track_id, notes)
