from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.config import PipelineConfig
from ml.contracts import AnalysisError, AnalysisResult, Label, Stage
from ml.model import CheckpointError, ModelConfig, build_classifier, save_checkpoint
from ml.pipeline import Pipeline
from tests.ml.factories import write_long_clip

FAST = PipelineConfig(frames=8, backend="torch", explain_top_k=2)


@pytest.fixture(scope="module")
def pipeline(tiny_checkpoint: Path) -> Pipeline:
    return Pipeline(FAST, device="cpu", checkpoint=tiny_checkpoint)


def test_video_end_to_end_validates_against_the_schema(pipeline: Pipeline, shared_data: Path, tmp_path: Path) -> None:
    clip = shared_data / "videos" / "real" / "celebdf_id0_0000.mp4"
    events: list[tuple[Stage, float]] = []
    result = pipeline.run(clip, progress=lambda s, p: events.append((s, p)), artifacts_dir=tmp_path)
    result = AnalysisResult.model_validate_json(result.model_dump_json())  # what the API stores and serves

    assert result.media.kind == "video"
    assert (result.media.width, result.media.height) == (942, 500)
    assert len(result.frames) == 8
    times = [f.timestamp_seconds for f in result.frames]
    assert times == sorted(times)
    assert 0.5 < times[0] < 1.5
    assert 14.0 < times[-1] < 15.7
    assert len(result.faces) >= 7  # one person talking to the camera
    assert {t.track_id for t in result.tracks} == {f.track_id for f in result.faces}
    main = max(result.tracks, key=lambda t: t.face_count)
    assert main.face_count >= 7
    assert all(0.0 <= f.p_fake <= 1.0 for f in result.faces)
    assert sum(f.face_count for f in result.frames) == len(result.faces)
    assert result.score is not None
    assert result.decision.threshold == 0.5
    assert (result.label is Label.inconclusive) == result.low_confidence
    assert result.model.model_id == "tiny-test"
    assert len(result.model.sha256) == 64
    assert set(result.stage_seconds) >= {"probing", "sampling", "detecting", "classifying", "aggregating",
                                         "explaining", "total"}
    # Grad-CAM for the two most suspicious faces, on files that exist
    ranked = sorted(result.faces, key=lambda f: -f.p_fake)
    gradcams = [a for a in result.artifacts if a.kind == "gradcam"]
    assert [a.face_rank for a in gradcams] == [1, 2]
    assert gradcams[0].p_fake == pytest.approx(ranked[0].p_fake)
    for artifact in result.artifacts:
        assert (tmp_path / artifact.name).is_file()
    # progress: stages in pipeline order, percent never going back, ending at 100
    stages = list(Stage)
    assert [stages.index(s) for s, _ in events] == sorted(stages.index(s) for s, _ in events)
    assert [p for _, p in events] == sorted(p for _, p in events)
    assert events[-1][1] == 100.0


def test_ten_minutes_with_two_people_in_the_last_minute(tiny_checkpoint: Path, face_photo: np.ndarray,
                                                         second_face_photo: np.ndarray, tmp_path: Path) -> None:
    """Burst sampling finds people who appear late; each gets one track across bursts; few frames kept."""
    clip = write_long_clip(tmp_path / "long.mp4", 600, [face_photo, second_face_photo], face_from=540)
    config = PipelineConfig(backend="torch", explain_top_k=2)
    pipeline = Pipeline(config, device="cpu", checkpoint=tiny_checkpoint)
    result = pipeline.run(clip, artifacts_dir=tmp_path / "artifacts")
    assert len(result.frames) == config.max_frames  # the budget grew from 32 with the duration
    times = [f.timestamp_seconds for f in result.frames]
    steps = np.diff(times)
    assert steps.min() < 1.0 < 15.0 < steps.max()  # bursts: close inside, far apart between
    assert times[0] < 30.0  # spread over the whole video
    assert times[-1] > 570.0
    faces = result.faces
    assert len(faces) >= 8
    assert min(f.timestamp_seconds for f in faces) >= 540.0
    assert len(result.tracks) == 2  # two people, each one track across the bursts of the last minute
    for track in result.tracks:
        assert track.last_seconds - track.first_seconds > 15.0
        xs = {round((f.box[0] + f.box[2]) / 2 / 100) for f in faces if f.track_id == track.track_id}
        assert len(xs) == 1  # never swapped
    assert len([a for a in result.artifacts if a.kind == "gradcam"]) == 2


def test_image_without_a_face_returns_no_face_found(pipeline: Pipeline, tmp_path: Path) -> None:
    path = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 300, 3), 200, dtype=np.uint8)).save(path)
    result = pipeline.run(path, artifacts_dir=tmp_path / "artifacts")
    assert result.faces == []
    assert (result.score, result.label, result.predicted_manipulation) == (None, Label.inconclusive, None)
    assert "no_face_found" in result.low_confidence_reasons
    assert result.artifacts == []


def test_photo_with_one_face(pipeline: Pipeline, face_photo_path: Path) -> None:
    result = pipeline.run(face_photo_path)
    assert len(result.faces) == 1
    assert result.faces[0].timestamp_seconds == 0.0
    assert result.low_confidence is False
    assert result.score == pytest.approx(result.faces[0].p_fake)
    assert result.predicted_manipulation == (result.score >= result.decision.threshold)
    assert result.artifacts == []  # no artifacts_dir, no explanations


def test_onnx_scoring_with_explanations_builds_the_torch_module_on_demand(
        tiny_checkpoint: Path, face_photo_path: Path, tmp_path: Path) -> None:
    import torch

    from ml.model import load_checkpoint
    from ml.onnx_export import export_onnx

    export = export_onnx(load_checkpoint(tiny_checkpoint, torch.device("cpu")), tmp_path / "tiny.onnx")  # built ahead
    config = FAST.model_copy(update={"backend": "onnx", "onnx_path": export})
    pipeline = Pipeline(config, device="cpu", checkpoint=tiny_checkpoint)
    assert pipeline.backend == "onnx"
    assert not pipeline.model.module_loaded  # nothing built for scoring alone
    result = pipeline.run(face_photo_path, artifacts_dir=tmp_path / "artifacts")
    assert [a.kind for a in result.artifacts] == ["gradcam", "frame"]
    assert all((tmp_path / "artifacts" / a.name).is_file() for a in result.artifacts)


def test_face_crop_mode_uses_the_whole_image(tiny_checkpoint: Path, shared_data: Path) -> None:
    crop = next((shared_data / "dfdc-faces" / "real").glob("*.jpg"))
    pipeline = Pipeline(FAST.model_copy(update={"face_crops": True}), device="cpu", checkpoint=tiny_checkpoint)
    assert pipeline.detector is None
    result = pipeline.run(crop)
    assert len(result.faces) == 1
    assert result.faces[0].box == (0.0, 0.0, 224.0, 224.0)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_every_classifier_batch_is_timed(tiny_checkpoint: Path, tmp_path: Path, backend: str) -> None:
    """Five face crops in batches of two: three forwards (2, 2, 1), each with its own measured time."""
    import torch

    from ml.model import load_checkpoint
    from ml.onnx_export import export_onnx

    config = FAST.model_copy(update={"face_crops": True, "batch_size": 2, "frames": 5, "backend": backend})
    if backend == "onnx":
        export = export_onnx(load_checkpoint(tiny_checkpoint, torch.device("cpu")), tmp_path / "tiny.onnx")
        config = config.model_copy(update={"onnx_path": export})
    pipeline = Pipeline(config, device="cpu", checkpoint=tiny_checkpoint)
    assert pipeline.backend == backend
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(5)]

    result = pipeline.run_frames(frames, [0.5 * i for i in range(5)])

    assert [b.size for b in result.classifier_batches] == [2, 2, 1]
    assert all(b.seconds > 0 for b in result.classifier_batches)
    assert sum(b.seconds for b in result.classifier_batches) <= result.stage_seconds["classifying"] + 1e-3
    stored = AnalysisResult.model_validate_json(result.model_dump_json())  # what the worker stores
    assert stored.classifier_batches == result.classifier_batches


def test_bad_media_raises_analysis_error(pipeline: Pipeline, tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(AnalysisError) as caught:
        pipeline.run(path)
    assert caught.value.code == "unsupported_media"


def test_missing_checkpoint_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CheckpointError, match="No model checkpoint"):
        Pipeline(FAST, device="cpu", checkpoint=tmp_path / "missing.safetensors")
    monkeypatch.setattr("ml.pipeline.DEFAULT_CHECKPOINT", tmp_path / "deepscreen-effnet-lite0.safetensors")
    with pytest.raises(CheckpointError, match="never runs with random weights"):
        Pipeline(FAST, device="cpu")


def test_mismatched_checkpoint_is_refused(tmp_path: Path) -> None:
    small = ModelConfig(architecture="test_efficientnet", input_size=64)
    path = tmp_path / "liar.safetensors"
    # weights of one architecture, config claiming another
    save_checkpoint(build_classifier(small), small.model_copy(update={"architecture": "efficientnet_lite0"}), path)
    with pytest.raises(CheckpointError, match="does not match"):
        Pipeline(FAST, device="cpu", checkpoint=path)
