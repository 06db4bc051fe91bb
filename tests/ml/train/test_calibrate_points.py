"""Operating points: thresholds meet their false-alarm rate on every fitting source; LOSO is honest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.config import PipelineConfig
from ml.contracts import Aggregation, Face, MediaKind, Signal
from ml.evaluate.scoring import FileScores
from ml.model import read_checkpoint_config
from ml.train.calibrate import (
    MANIPULATED_FALSE_ALARM,
    SourceScores,
    best_aggregation,
    calibrate_scores,
    fit_thresholds,
    leave_one_source_out,
    threshold_for_rate,
    write_calibrated_checkpoint,
)


def test_threshold_for_rate_flags_at_most_that_share() -> None:
    reals = np.arange(100) / 100.0  # 0.00 .. 0.99
    threshold = threshold_for_rate(reals, 0.05)
    assert np.mean(reals >= threshold) == pytest.approx(0.05)
    assert np.mean(reals >= np.nextafter(threshold, -np.inf) - 0.01) > 0.05, "the lowest such threshold"
    ties = np.full(10, 0.7)
    assert np.mean(ties >= threshold_for_rate(ties, 0.05)) == 0.0, "ties are all flagged or none"


def test_thresholds_hold_on_every_fitting_source() -> None:
    rng = np.random.default_rng(0)
    low = SourceScores("low", rng.uniform(0.0, 0.5, 400), rng.uniform(0.5, 1.0, 400))
    high = SourceScores("high", rng.uniform(0.3, 0.9, 100), rng.uniform(0.8, 1.0, 100))
    manipulated, inconclusive = fit_thresholds([low, high])
    assert inconclusive <= manipulated
    for source in (low, high):
        assert np.mean(source.real >= manipulated) <= MANIPULATED_FALSE_ALARM
        assert np.mean(source.real >= inconclusive) <= 0.15


def test_leave_one_source_out_measures_on_the_source_left_out() -> None:
    # Fitted on "low" alone, the threshold is ~0.475 and flags most of "high"'s reals: LOSO must show it.
    rng = np.random.default_rng(1)
    low = SourceScores("low", rng.uniform(0.0, 0.5, 400), rng.uniform(0.5, 1.0, 400))
    high = SourceScores("high", rng.uniform(0.3, 0.9, 100), rng.uniform(0.8, 1.0, 100))
    loso = leave_one_source_out([low, high])
    assert loso["high"]["fitted_on"] == ["low"]
    assert loso["high"]["false_alarm_rate"] > 0.5
    assert loso["low"]["false_alarm_rate"] == 0.0


def _record(source: str, label: int, scores: list[float], kind: MediaKind = MediaKind.video) -> FileScores:
    faces = [Face(frame_index=i, timestamp_seconds=float(i), box=(0, 0, 1, 1), detector_probability=1.0, track_id=0,
                  p_fake=p) for i, p in enumerate(scores)]
    return FileScores(sha256=f"{source}{label}{scores}", path="x", label=label, source=source, kind=kind,
                      sampled_frames=len(scores), faces=faces, file_bytes=1, sharpness=None)


def test_calibration_replays_aggregation_and_picks_the_strategy_that_holds_on_unseen_sources() -> None:
    """Fakes with one very bad frame in four: trimmed_top sees them, the mean hardly; reals are flat."""
    records = []
    for source in ("a", "b"):
        for i in range(60):
            real = 0.1 + 0.2 * i / 60
            records.append(_record(source, 0, [real] * 4))
            fake = 0.1 * i / 60
            records.append(_record(source, 1, [fake, fake, fake, 0.99]))
    records.append(_record("clips", 0, [0.1, 0.1, 0.1, 0.1]))  # eval only: measured, never fitted
    points, figures = calibrate_scores(records, PipelineConfig())
    assert {(p.media_kind, p.aggregation) for p in points} == {(MediaKind.video, a) for a in Aggregation}
    trimmed = figures[f"{Signal.face_manipulation}/{MediaKind.video}/{Aggregation.trimmed_top}"]
    assert "clips" not in trimmed["loso"]["a"]["fitted_on"]
    assert "clips" in trimmed["loso"]
    assert trimmed["held_out_catch_rate"] > figures[f"{Signal.face_manipulation}/{MediaKind.video}/mean"][
        "held_out_catch_rate"]
    assert best_aggregation(figures) is Aggregation.trimmed_top


def test_the_calibrated_checkpoint_carries_the_points_the_pipeline_uses(tiny_checkpoint: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    records = [_record(s, y, list(rng.uniform(0.5 * y, 0.5 + 0.5 * y, 3))) for s in ("a", "b") for y in (0, 1)
               for _ in range(30)]
    points, _ = calibrate_scores(records, PipelineConfig())
    target = tmp_path / "calibrated.safetensors"
    write_calibrated_checkpoint(tiny_checkpoint, target, points, version="test-1")
    config = read_checkpoint_config(target)
    assert config.version == "test-1"
    point = config.operating_point(Signal.face_manipulation, MediaKind.video, Aggregation.trimmed_top)
    assert point.threshold == next(p.threshold for p in points if p.aggregation is Aggregation.trimmed_top)
    assert point.target_false_alarm_rate == MANIPULATED_FALSE_ALARM
    assert "leave-one-source-out" in point.calibration_set
    from ml.pipeline import Pipeline

    pipeline = Pipeline(PipelineConfig(explain_top_k=0), checkpoint=target)
    assert pipeline.model.config.points(MediaKind.video, Aggregation.trimmed_top)[Signal.face_manipulation] == point
    with pytest.raises(ValueError, match="new file"):
        write_calibrated_checkpoint(target, target, points)
