"""Operating points: thresholds meet their false-alarm rate on every fitting source; LOSO is honest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.config import PipelineConfig
from ml.contracts import Aggregation, Face, Label, MediaKind, OperatingPoint, Signal
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


def _synthetic_record(source: str, label: int, synthetic: list[float], kind: MediaKind) -> FileScores:
    faces = [Face(frame_index=i, timestamp_seconds=float(i), box=(0, 0, 1, 1), detector_probability=1.0, track_id=0,
                  p_fake=0.1, p_synthetic=p) for i, p in enumerate(synthetic)]
    return FileScores(sha256=f"{source}{label}{kind}{synthetic}", path="x", label=label, source=source, kind=kind,
                      sampled_frames=len(synthetic), faces=faces, file_bytes=1, sharpness=None)


def test_the_synthetic_signal_never_calls_a_video_manipulated_and_is_fitted_on_real_videos() -> None:
    """Real videos of "bright" score as high as generated photos: the photo threshold (fitted on
    photos) would flag a fifth of them. On video the signal can only make a file inconclusive,
    from where at most 5 % of every source's real videos reach, never below the photo threshold;
    held out, "bright"'s reals are made inconclusive by the threshold fitted on "dull" alone."""
    from ml.aggregate import decide, score_tracks
    from ml.train.calibrate import NEVER

    photos = [_synthetic_record("ffhq_sg2", 0, [0.1 + 0.5 * i / 40], MediaKind.image) for i in range(40)]
    photos += [_synthetic_record("ffhq_sg2", 1, [0.5 + 0.5 * i / 40], MediaKind.image) for i in range(40)]
    photos += [_synthetic_record("utkface", 0, [0.4 * i / 40], MediaKind.image) for i in range(40)]
    videos = [_synthetic_record("dull", 0, [0.2 * i / 60] * 3, MediaKind.video) for i in range(60)]
    videos += [_synthetic_record("bright", 0, [0.5 + 0.5 * i / 60] * 3, MediaKind.video) for i in range(60)]
    videos += [_synthetic_record("bright", 1, [0.05] * 3, MediaKind.video) for _ in range(10)]  # swaps: not synthetic
    signals = (Signal.face_manipulation, Signal.synthetic_face)
    points, figures = calibrate_scores(photos + videos, PipelineConfig(), signals)
    photo = next(p for p in points if (p.signal, p.media_kind, p.aggregation) ==
                 (Signal.synthetic_face, MediaKind.image, Aggregation.trimmed_top))
    video = next(p for p in points if (p.signal, p.media_kind, p.aggregation) ==
                 (Signal.synthetic_face, MediaKind.video, Aggregation.trimmed_top))
    assert video.threshold == NEVER > 1.0
    assert video.false_alarm_rate == 0.0
    assert video.catch_rate is None
    bright = np.array([0.5 + 0.5 * i / 60 for i in range(60)])
    assert np.mean(bright >= photo.threshold) > 0.05, "the photo point would flag bright's real videos"
    assert video.inconclusive_threshold >= photo.threshold
    assert np.mean(bright >= video.inconclusive_threshold) <= 0.05
    detail = figures[f"{Signal.synthetic_face}/{MediaKind.video}/{Aggregation.trimmed_top}"]
    assert detail["loso"]["bright"]["fitted_on"] == ["dull"]
    assert detail["loso"]["bright"]["real_inconclusive_rate"] > 0.05
    assert detail["loso"]["bright"]["fake"] == 0, "a face swap is no generated face"

    faces = [Face(frame_index=i, timestamp_seconds=float(i), box=(0, 0, 1, 1), detector_probability=1.0, track_id=0,
                  p_fake=0.01, p_synthetic=1.0) for i in range(4)]
    manipulation = OperatingPoint(media_kind=MediaKind.video, aggregation=Aggregation.trimmed_top, threshold=0.9,
                                  inconclusive_threshold=0.8, calibration_set="test")
    decision = decide(faces, score_tracks(faces, Aggregation.trimmed_top),
                      points={Signal.face_manipulation: manipulation, Signal.synthetic_face: video},
                      sampled_frames=4, min_track_faces=3, disagreement_std=0.3)
    assert decision.label is Label.inconclusive


def test_a_file_in_two_sets_counts_once_and_faceforensics_fakes_are_manipulations() -> None:
    """The FaceForensics++ sets share their reals: calibration must not count them four times."""
    reals = [_record("ffpp", 0, [i / 100], MediaKind.image) for i in range(100)]
    fakes = [_record("ffpp", 1, [0.5 + i / 200], MediaKind.image) for i in range(50)]
    _, figures = calibrate_scores(reals + reals + fakes, PipelineConfig())
    final = figures[f"{Signal.face_manipulation}/{MediaKind.image}/{Aggregation.mean}"]["fitted_on_all"]["ffpp"]
    assert (final["real"], final["fake"]) == (100, 50)


def test_calibrating_one_signal_keeps_the_checkpoints_other_points(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """`--signal face_manipulation` on scores that have a synthetic signal refits only that signal."""
    import json

    from ml.evaluate.scoring import write_scores
    from ml.model import file_sha256, read_checkpoint_config
    from ml.train.calibrate import main

    kept = OperatingPoint(signal=Signal.synthetic_face, media_kind=MediaKind.image, aggregation=Aggregation.mean,
                          threshold=0.77, inconclusive_threshold=0.66, calibration_set="ml.train.synthetic")
    start = tmp_path / "start.safetensors"
    write_calibrated_checkpoint(tiny_checkpoint, start, [kept])
    records = [_synthetic_record(s, 0, [i / 30], MediaKind.image) for s in ("a", "b") for i in range(30)]
    write_scores(tmp_path / "scores.json", {"photos": records}, checkpoint_sha256=file_sha256(start),
                 model_config=read_checkpoint_config(start), config=PipelineConfig())
    out = tmp_path / "out.safetensors"
    assert main(["--scores", str(tmp_path / "scores.json"), "--checkpoint", str(start), "--out-checkpoint", str(out),
                 "--report", str(tmp_path / "report"), "--signal", "face_manipulation"]) == 0
    points = read_checkpoint_config(out).operating_points
    assert kept in points
    assert {p.signal for p in points if p != kept} == {Signal.face_manipulation}
    figures = json.loads((tmp_path / "report" / "calibration.json").read_text())["figures"]
    assert all(key.startswith("face_manipulation/") for key in figures)


def test_scores_calibrate_any_checkpoint_with_their_weights_and_no_other(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """A re-calibrated copy computes the same scores (it is refitted in steps); a new temperature does not."""
    from safetensors.torch import load_file, save_file

    from ml.evaluate.scoring import write_scores
    from ml.model import CONFIG_METADATA_KEY, file_sha256, read_checkpoint_config, weights_digest
    from ml.train.calibrate import main

    records = [_record(s, 0, [i / 30], MediaKind.image) for s in ("a", "b") for i in range(30)]
    write_scores(tmp_path / "scores.json", {"photos": records}, checkpoint_sha256=file_sha256(tiny_checkpoint),
                 model_config=read_checkpoint_config(tiny_checkpoint), config=PipelineConfig(),
                 weights=weights_digest(tiny_checkpoint))
    copy = tmp_path / "recalibrated.safetensors"
    write_calibrated_checkpoint(tiny_checkpoint, copy, [], version="again")
    warmer = tmp_path / "warmer.safetensors"
    config = read_checkpoint_config(tiny_checkpoint).model_copy(update={"temperature": 3.0})
    save_file(load_file(str(tiny_checkpoint)), str(warmer), metadata={CONFIG_METADATA_KEY: config.model_dump_json()})
    common = ["--scores", str(tmp_path / "scores.json"), "--report", str(tmp_path / "report")]
    assert main([*common, "--checkpoint", str(copy), "--out-checkpoint", str(tmp_path / "out.safetensors")]) == 0
    with pytest.raises(SystemExit):
        main([*common, "--checkpoint", str(warmer), "--out-checkpoint", str(tmp_path / "other.safetensors")])
