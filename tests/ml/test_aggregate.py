from __future__ import annotations

import pytest

from ml.aggregate import AGGREGATIONS, confident, decide, mean, score_tracks, trimmed_top
from ml.contracts import Aggregation, Face, Label, LowConfidenceReason, MediaKind, OperatingPoint, Signal


def _points(threshold: float, inconclusive: float | None = None, synthetic: float | None = None
            ) -> dict[Signal, OperatingPoint]:
    def point(signal: Signal, at: float, below: float | None) -> OperatingPoint:
        return OperatingPoint(signal=signal, media_kind=MediaKind.video, aggregation=Aggregation.mean, threshold=at,
                              inconclusive_threshold=at if below is None else below, calibration_set="test")
    points = {Signal.face_manipulation: point(Signal.face_manipulation, threshold, inconclusive)}
    if synthetic is not None:
        points[Signal.synthetic_face] = point(Signal.synthetic_face, synthetic, None)
    return points


def _faces(track_scores: dict[int, list[float]]) -> list[Face]:
    faces = []
    for track_id, scores in track_scores.items():
        for i, p in enumerate(scores):
            faces.append(Face(frame_index=i, timestamp_seconds=i * 0.5, box=(0, 0, 10, 10),
                              detector_probability=0.99, track_id=track_id, p_fake=p))
    return faces


def test_mean_and_trimmed_top() -> None:
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert mean(scores) == pytest.approx(0.55)
    assert trimmed_top(scores) == pytest.approx((1.0 + 0.9 + 0.8) / 3)  # top 30%
    assert trimmed_top(scores, fraction=0.05) == pytest.approx(1.0)  # never fewer than one
    assert trimmed_top([0.2]) == pytest.approx(0.2)


def test_confident_strategy_branches() -> None:
    # 14 of 32 frames confidently fake (> 32 // 2.5 = 12 and > 11): mean of the fakes only
    many_fakes = [0.9] * 7 + [0.95] * 7 + [0.1] * 18
    assert confident(many_fakes) == pytest.approx(0.925)
    # 12 confident fakes is not more than 32 // 2.5: falls through to the mean
    some_fakes = [0.9] * 12 + [0.5] * 20
    assert confident(some_fakes) == pytest.approx(mean(some_fakes))
    # 30 of 32 confidently real (> 90%): mean of the confident reals
    reals = [0.1] * 30 + [0.6, 0.7]
    assert confident(reals) == pytest.approx(0.1)
    assert confident([0.5, 0.6, 0.7]) == pytest.approx(0.6)


def test_strategies_are_registered_by_name_and_refuse_empty_input() -> None:
    assert set(AGGREGATIONS) == {"mean", "trimmed_top", "confident"}
    for strategy in AGGREGATIONS.values():
        with pytest.raises(ValueError, match="empty"):
            strategy([])


def test_file_score_is_the_most_manipulated_person() -> None:
    faces = _faces({0: [0.1] * 10, 1: [0.9] * 10})
    tracks = score_tracks(faces, "mean")
    assert [t.score for t in tracks] == pytest.approx([0.1, 0.9])
    verdict = decide(faces, tracks, points=_points(0.5), sampled_frames=10, min_track_faces=3, disagreement_std=0.3)
    assert verdict.score == pytest.approx(0.9)
    assert verdict.deciding_track == 1
    assert (verdict.label, verdict.predicted_manipulation, verdict.low_confidence) == (Label.manipulated, True, False)


def test_label_follows_the_checkpoint_threshold() -> None:
    faces = _faces({0: [0.35] * 8})
    tracks = score_tracks(faces, "mean")
    kwargs = {"sampled_frames": 8, "min_track_faces": 3, "disagreement_std": 0.3}
    assert decide(faces, tracks, points=_points(0.3), **kwargs).label is Label.manipulated
    assert decide(faces, tracks, points=_points(0.4), **kwargs).label is Label.no_signs


def test_a_stray_short_track_does_not_decide() -> None:
    faces = _faces({0: [0.1] * 10, 1: [0.99]})
    verdict = decide(faces, score_tracks(faces, "mean"), points=_points(0.5), sampled_frames=10, min_track_faces=3,
                     disagreement_std=0.3)
    assert verdict.deciding_track == 0
    assert verdict.label is Label.no_signs


def test_low_confidence_reasons() -> None:
    kwargs = {"points": _points(0.5), "min_track_faces": 3, "disagreement_std": 0.3}
    none = decide([], [], sampled_frames=32, **kwargs)
    assert (none.score, none.label, none.predicted_manipulation) == (None, Label.inconclusive, None)
    assert none.low_confidence_reasons == ["no_face_found"]

    few = _faces({0: [0.9, 0.9]})
    verdict = decide(few, score_tracks(few, "mean"), sampled_frames=32, **kwargs)
    assert verdict.low_confidence_reasons == ["too_few_faces"]
    assert verdict.score == pytest.approx(0.9)
    assert verdict.predicted_manipulation is None

    split = _faces({0: [0.95] * 5 + [0.05] * 5})
    verdict = decide(split, score_tracks(split, "mean"), sampled_frames=10, **kwargs)
    assert verdict.low_confidence_reasons == ["scores_disagree"]
    assert verdict.label is Label.inconclusive


def test_a_single_image_face_is_enough() -> None:
    faces = _faces({0: [0.8]})
    verdict = decide(faces, score_tracks(faces, "confident"), points=_points(0.5), sampled_frames=1, min_track_faces=3,
                     disagreement_std=0.3)
    assert (verdict.label, verdict.low_confidence) == (Label.manipulated, False)


def test_scores_in_the_band_are_inconclusive_and_marked_borderline() -> None:
    kwargs = {"sampled_frames": 8, "min_track_faces": 3, "disagreement_std": 0.3}
    for score, label in ((0.30, Label.no_signs), (0.45, Label.inconclusive), (0.60, Label.manipulated)):
        faces = _faces({0: [score] * 8})
        decision = decide(faces, score_tracks(faces, Aggregation.mean), points=_points(0.5, 0.4), **kwargs)
        assert decision.label is label
        assert (LowConfidenceReason.borderline in decision.low_confidence_reasons) == (label is Label.inconclusive)
        assert decision.signals[0].label is label


def test_a_synthetic_face_is_flagged_by_its_own_signal() -> None:
    faces = [f.model_copy(update={"p_synthetic": 0.97}) for f in _faces({0: [0.1] * 8})]
    tracks = score_tracks(faces, Aggregation.mean)
    assert tracks[0].synthetic_score == pytest.approx(0.97)
    decision = decide(faces, tracks, points=_points(0.5, synthetic=0.8), sampled_frames=8, min_track_faces=3,
                      disagreement_std=0.3)
    by_signal = {s.signal: s for s in decision.signals}
    assert by_signal[Signal.face_manipulation].label is Label.no_signs
    assert by_signal[Signal.synthetic_face].label is Label.manipulated
    assert (decision.label, decision.predicted_manipulation) == (Label.manipulated, True)
    assert decision.score == pytest.approx(0.1)
