"""Evaluation: metrics on inputs whose answers are known by hand; the run on tiny folders."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.config import PipelineConfig
from ml.contracts import Aggregation, Label, MediaKind
from ml.evaluate import (
    auc_interval,
    baseline_auc,
    binary_metrics,
    equal_error_rate,
    expected_calibration_error,
    tpr_at_fpr,
)
from ml.evaluate.scoring import read_scores, replay
from ml.evaluate.sets import folder_items, frame_files
from ml.model import file_sha256, read_checkpoint_config


def test_perfect_separation() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    metrics = binary_metrics(labels, scores, threshold=0.5)
    assert metrics["auc"] == 1.0
    assert metrics["eer"] == 0.0
    assert metrics["tpr_at_fpr_1pct"] == 1.0
    assert metrics["accuracy"] == 1.0


def test_auc_of_a_known_ranking() -> None:
    # Pairs (fake, real) ranked correctly: 0.8>0.3, 0.8>0.6, 0.5>0.3; wrong: 0.5<0.6 -> AUC 3/4.
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.3, 0.6, 0.5, 0.8])
    assert binary_metrics(labels, scores, 0.5)["auc"] == pytest.approx(0.75)


def test_auc_interval_holds_the_true_auc_about_95_times_in_100() -> None:
    """Two normal classes one standard deviation apart: the true AUC is Phi(1/sqrt 2) = 0.760.
    Over 100 samples of 50 + 50 the interval holds the sample's AUC always and the true one
    about 95 times (a binomial 95 +- 2.2; 88 is three standard deviations below)."""
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(50), np.ones(50)]
    held = 0
    for seed in range(100):
        scores = np.r_[rng.normal(0, 1, 50), rng.normal(1, 1, 50)]
        low, high = auc_interval(labels, scores, resamples=500, seed=seed)
        assert low <= binary_metrics(labels, scores, 0.5)["auc"] <= high
        held += low < 0.760 < high
    assert 88 <= held <= 100


def test_auc_interval_narrows_with_more_data() -> None:
    """The width goes as the standard error, 1 / sqrt n: 16x the data, a quarter of the width."""
    rng = np.random.default_rng(2)
    widths = []
    for n in (50, 800):
        labels = np.r_[np.zeros(n), np.ones(n)]
        low, high = auc_interval(labels, np.r_[rng.normal(0, 1, n), rng.normal(1, 1, n)])
        widths.append(high - low)
    assert 0.15 < widths[1] / widths[0] < 0.35


def test_auc_interval_of_a_perfect_separation_is_one() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert auc_interval(labels, np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])) == (1.0, 1.0)
    metrics = binary_metrics(labels, np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9]), 0.5)
    assert (metrics["auc_low"], metrics["auc_high"]) == (1.0, 1.0)


def test_auc_interval_of_a_single_real_is_unknown() -> None:
    """The shared clips hold one real video: an AUC, but no interval (it crashed the report once)."""
    metrics = binary_metrics(np.array([0, 1, 1, 1, 1]), np.array([0.2, 0.9, 0.1, 0.8, 0.7]), 0.5)
    assert metrics["auc"] == pytest.approx(0.75)
    assert np.isnan(metrics["auc_low"])
    assert np.isnan(metrics["auc_high"])


def test_eer_of_symmetric_overlap() -> None:
    # 10 reals and 10 fakes; 2 of each fall on the wrong side of 0.5 -> FPR = FNR = 0.2.
    reals = np.r_[np.linspace(0.05, 0.4, 8), [0.6, 0.7]]
    fakes = np.r_[np.linspace(0.6, 0.95, 8), [0.3, 0.4]]
    labels = np.r_[np.zeros(10), np.ones(10)]
    assert equal_error_rate(labels, np.r_[reals, fakes]) == pytest.approx(0.2, abs=0.051)


def test_tpr_at_fpr() -> None:
    labels = np.r_[np.zeros(100), np.ones(100)]
    reals = np.linspace(0.0, 0.5, 100)
    reals[-1] = 0.99  # one false alarm above every fake
    fakes = np.r_[np.linspace(0.6, 0.9, 50), np.linspace(0.1, 0.4, 50)]
    scores = np.r_[reals, fakes]
    assert tpr_at_fpr(labels, scores, 0.01) == pytest.approx(0.5)
    assert tpr_at_fpr(labels, scores, 0.0) == 0.0


def test_ece_of_calibrated_and_overconfident_scores() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(200000)
    labels = (rng.random(p.size) < p).astype(float)
    assert expected_calibration_error(labels, p) < 0.01
    # Always saying 0.9 when half are fake: ECE = |0.9 - 0.5| = 0.4.
    assert expected_calibration_error(np.r_[np.zeros(50), np.ones(50)], np.full(100, 0.9)) == pytest.approx(0.4)


def test_baseline_auc_takes_the_better_direction() -> None:
    assert baseline_auc([0, 0, 1, 1], [4, 3, 2, 1]) == 1.0



def test_baseline_auc_leaves_out_unknown_values() -> None:
    assert baseline_auc([0, 0, 1, 1, 1], [1, 2, 3, 4, float("nan")]) == 1.0


# --- the run through the production pipeline, on tiny folders ----------------------------------


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory, shared_data) -> Path:
    """real/: 2 photos + 1 frames folder (3 frames); fake/: 2 photos. Copied at test time, never committed."""
    root = tmp_path_factory.mktemp("eval-folder")
    lfw = shared_data / "lfw-faceswap"
    for name in ("real", "fake"):
        (root / name).mkdir()
        for path in sorted((lfw / name).glob("*.jpg"))[:2]:
            shutil.copy(path, root / name / path.name)
    frames = root / "real" / "sequence"
    frames.mkdir()
    for i, path in enumerate(sorted((lfw / "real").glob("*.jpg"))[2:5]):
        image = Image.open(path).convert("RGB").resize((250, 250))
        image.save(frames / f"{i:03d}.png")
    (root / "real" / "notes.txt").write_text("not media: skipped")
    return root


def _evaluate(tiny_folder: Path, checkpoint: Path, out: Path, cache: Path) -> dict:
    from ml.evaluate.__main__ import evaluate

    return evaluate(out, sets={"tiny": folder_items(tiny_folder)}, checkpoint=checkpoint,
                    config=PipelineConfig(frames=2, explain_top_k=0), cache_dir=cache)


def test_folder_items_take_images_videos_and_frame_folders(tiny_folder: Path) -> None:
    items = folder_items(tiny_folder)
    assert sorted((i.label, i.kind, i.path.name) for i in items) == sorted([
        *((1, MediaKind.image, p.name) for p in (tiny_folder / "fake").glob("*.jpg")),
        *((0, MediaKind.image, p.name) for p in (tiny_folder / "real").glob("*.jpg")),
        (0, MediaKind.video, "sequence"),
    ])


def test_a_folder_of_frames_is_one_video_sampled_like_a_video(tiny_checkpoint: Path, tiny_folder: Path) -> None:
    from ml.pipeline import Pipeline
    from ml.train.data import read_rgb

    pipeline = Pipeline(PipelineConfig(frames=2, explain_top_k=0), checkpoint=tiny_checkpoint)
    frames = [read_rgb(p) for p in frame_files(tiny_folder / "real" / "sequence")]
    result = pipeline.run_frames(frames, [0.0, 0.5, 1.0])
    assert result.media.kind is MediaKind.video
    # 2 of 3 frames, at the centres of 2 equal segments (0.75 and 2.25): frames 0 and 2
    assert [f.timestamp_seconds for f in result.frames] == [0.0, 1.0]
    assert {f.track_id for f in result.faces} == {0}
    assert result.decision.media_kind is MediaKind.video


def test_evaluation_stores_scores_and_replays_the_pipeline_decision(
    tiny_checkpoint: Path, tiny_folder: Path, tmp_path: Path,
) -> None:
    from ml.pipeline import Pipeline

    report = _evaluate(tiny_folder, tiny_checkpoint, tmp_path / "out", tmp_path / "cache")
    header, sets = read_scores(tmp_path / "out" / "scores.json")
    assert header["checkpoint_sha256"] == file_sha256(tiny_checkpoint)
    records = sets["tiny"]
    assert len(records) == 5
    assert {r.kind for r in records} == {MediaKind.image, MediaKind.video}
    assert all(r.faces for r in records), "every tiny item shows a face"
    # the replayed decision is the pipeline's own, file by file
    config = PipelineConfig(frames=2, explain_top_k=0)
    pipeline = Pipeline(config, checkpoint=tiny_checkpoint)
    model_config = read_checkpoint_config(tiny_checkpoint)
    for record in records:
        if record.kind is MediaKind.image:
            result = pipeline.run(Path(record.path))
            decision = replay(record, config.aggregation, points=model_config.points(record.kind, config.aggregation),
                              config=config)
            assert decision.score == pytest.approx(result.score, abs=1e-6)
            assert decision.label is result.label
    rows = report["rows"]
    assert set(rows) == {f"tiny ({a})" for a in Aggregation}
    row = rows["tiny (mean)"]
    assert (row["real"], row["fake"], row["no_face"]) == (3, 2, 0)
    for key in ("auc", "eer", "tpr_at_fpr_1pct", "tpr_at_fpr_5pct", "false_alarm_rate", "catch_rate", "ece",
                "file_size_auc", "sharpness_auc"):
        assert key in row
    assert "| tiny (mean) |" in (tmp_path / "out" / "report.md").read_text()


def test_evaluation_follows_decide_not_a_copy(
    tiny_checkpoint: Path, tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A changed `ml.aggregate.decide` changes the figures: evaluation measures the production rule."""
    from ml import aggregate

    original = aggregate.decide

    def always_manipulated(*args, **kwargs):
        return dataclasses.replace(original(*args, **kwargs), label=Label.manipulated, low_confidence_reasons=[])

    monkeypatch.setattr(aggregate, "decide", always_manipulated)
    row = _evaluate(tiny_folder, tiny_checkpoint, tmp_path / "out", tmp_path / "cache")["rows"]["tiny (mean)"]
    assert row["false_alarm_rate"] == 1.0
    assert row["catch_rate"] == 1.0


def test_a_warm_cache_needs_no_model(
    tiny_checkpoint: Path, tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ml.evaluate.scoring import Scorer

    first = _evaluate(tiny_folder, tiny_checkpoint, tmp_path / "a", tmp_path / "cache")

    def no_pipeline(self, face_crops):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(Scorer, "pipeline", no_pipeline)
    second = _evaluate(tiny_folder, tiny_checkpoint, tmp_path / "b", tmp_path / "cache")
    assert second["rows"]["tiny (mean)"]["auc"] == first["rows"]["tiny (mean)"]["auc"]
    assert (tmp_path / "a" / "scores.json").read_text() == (tmp_path / "b" / "scores.json").read_text()


def test_a_recalibrated_checkpoint_reuses_the_scores_and_a_new_temperature_does_not(
    tiny_checkpoint: Path, tiny_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """New operating points and version change the file, not a score: the cache holds. A new
    temperature changes every probability: it must not."""
    import json

    from safetensors.torch import load_file, save_file

    from ml.contracts import OperatingPoint
    from ml.evaluate.scoring import Scorer
    from ml.model import CONFIG_METADATA_KEY
    from ml.train.calibrate import write_calibrated_checkpoint

    _evaluate(tiny_folder, tiny_checkpoint, tmp_path / "a", tmp_path / "cache")
    point = OperatingPoint(media_kind=MediaKind.image, aggregation=Aggregation.mean, threshold=0.9,
                           inconclusive_threshold=0.8, calibration_set="test")
    recalibrated = tmp_path / "recalibrated.safetensors"
    write_calibrated_checkpoint(tiny_checkpoint, recalibrated, [point], version="test-2")
    warmer = tmp_path / "warmer.safetensors"
    config = read_checkpoint_config(tiny_checkpoint).model_copy(update={"temperature": 2.0})
    save_file(load_file(str(tiny_checkpoint)), str(warmer), metadata={CONFIG_METADATA_KEY: config.model_dump_json()})

    built = []
    original = Scorer.pipeline

    def counting(self, face_crops):
        built.append(self.checkpoint)
        return original(self, face_crops)

    monkeypatch.setattr(Scorer, "pipeline", counting)
    _evaluate(tiny_folder, recalibrated, tmp_path / "b", tmp_path / "cache")
    assert built == []
    header = json.loads((tmp_path / "b" / "scores.json").read_text())
    assert header["checkpoint_sha256"] == file_sha256(recalibrated)
    _evaluate(tiny_folder, warmer, tmp_path / "c", tmp_path / "cache")
    assert built, "a new temperature scored the files again"


def test_a_folder_without_real_and_fake_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    with pytest.raises(FileNotFoundError, match="fake"):
        folder_items(tmp_path)


def test_the_score_cache_key_names_only_real_pipeline_settings() -> None:
    """A renamed setting silently dropped out of the cache key (track_iou after the tracking rework)."""
    from ml.config import PipelineConfig
    from ml.evaluate.scoring import FACE_SETTINGS

    assert set(FACE_SETTINGS) <= set(PipelineConfig.model_fields)
