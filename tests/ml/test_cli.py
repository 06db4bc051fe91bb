from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.cli import EXIT_CANNOT_START, EXIT_FAKE_FOUND, EXIT_FILE_FAILED, EXIT_OK, EXIT_USAGE, exit_status, main
from ml.contracts import AnalysisResult, Label


def test_analyze_clip_as_json(tiny_checkpoint: Path, shared_data: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    clip = shared_data / "videos" / "fake" / "ffpp_deepfakes_003_000.mp4"
    code = main(["analyze", str(clip), "--json", "--frames", "6", "--checkpoint", str(tiny_checkpoint),
                 "--device", "cpu", "--backend", "torch", "--explain", str(tmp_path)])
    out = capsys.readouterr().out
    (line,) = out.splitlines()
    payload = json.loads(line)
    assert payload["file"] == str(clip)
    result = AnalysisResult.model_validate(payload["result"])
    assert len(result.frames) == 6
    assert result.faces
    assert code == (EXIT_FAKE_FOUND if result.predicted_manipulation else EXIT_OK)
    for artifact in result.artifacts:
        assert (tmp_path / f"1-{clip.name}" / artifact.name).is_file()


def test_human_summary_and_a_failed_file(tiny_checkpoint: Path, face_photo_path: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code = main(["analyze", str(face_photo_path), str(broken), "--checkpoint", str(tiny_checkpoint),
                 "--device", "cpu", "--backend", "torch"])
    captured = capsys.readouterr()
    assert code == EXIT_FILE_FAILED
    assert f"{face_photo_path}: " in captured.out
    assert "1 faces in 1/1 sampled frames, 1 person" in captured.out
    assert "tiny-test" in captured.out
    assert f"{broken}: ERROR corrupt_media" in captured.err


def test_errors_as_json_lines(tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    code = main(["analyze", str(text), "--json", "--checkpoint", str(tiny_checkpoint), "--device", "cpu"])
    assert code == EXIT_FILE_FAILED
    payload = json.loads(capsys.readouterr().out)
    assert payload["error"]["code"] == "unsupported_media"


def test_missing_checkpoint_cannot_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["analyze", str(tmp_path / "x.jpg"), "--checkpoint", str(tmp_path / "none.safetensors")])
    assert code == EXIT_CANNOT_START
    assert "No model checkpoint" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["analyze"])
    assert caught.value.code == EXIT_USAGE
    with pytest.raises(SystemExit) as caught:
        main(["frobnicate"])
    assert caught.value.code == EXIT_USAGE
    assert main(["analyze", "a.mp4", "--frames", "0"]) == EXIT_USAGE


@pytest.fixture(scope="session")
def flag_everything_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its threshold at 0: every face it scores shows signs of manipulation."""
    import torch

    from ml.model import ModelConfig, build_classifier, save_checkpoint

    torch.manual_seed(0)
    config = ModelConfig(architecture="test_efficientnet", input_size=64, threshold=0.0, model_id="flag-all",
                         version="test-0")
    path = tmp_path_factory.mktemp("checkpoint") / "flag-all.safetensors"
    save_checkpoint(build_classifier(config), config, path, half=False)
    return path


def _blank_png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (160, 120), (90, 90, 90)).save(path)
    return path


def test_exit_status_precedence_detection_over_failure_over_clean() -> None:
    assert exit_status(fake_found=True, failed=True) == EXIT_FAKE_FOUND
    assert exit_status(fake_found=True, failed=False) == EXIT_FAKE_FOUND
    assert exit_status(fake_found=False, failed=True) == EXIT_FILE_FAILED
    assert exit_status(fake_found=False, failed=False) == EXIT_OK


def test_a_flagged_file_outranks_a_file_without_a_face(
    flag_everything_checkpoint: Path, face_photo_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    blank = _blank_png(tmp_path / "blank.png")
    common = ["--json", "--checkpoint", str(flag_everything_checkpoint), "--device", "cpu", "--backend", "torch"]

    both = main(["analyze", str(blank), str(face_photo_path), *common])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    blank_only = main(["analyze", str(blank), *common])
    capsys.readouterr()

    no_face, face = (AnalysisResult.model_validate(line["result"]) for line in lines)
    assert no_face.label is Label.inconclusive, "no face is a result, not an error"
    assert no_face.low_confidence_reasons == ["no_face_found"]
    assert face.label is Label.manipulated
    assert both == EXIT_FAKE_FOUND, "1 (something looked manipulated) wins over 3 (a file without a face)"
    assert blank_only == EXIT_FILE_FAILED


def test_explain_keeps_same_named_inputs_apart(
    tiny_checkpoint: Path, face_photo_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = tmp_path / "a" / "photo.jpg", tmp_path / "b" / "photo.jpg"
    for copy in (first, second):
        copy.parent.mkdir()
        copy.write_bytes(face_photo_path.read_bytes())
    out = tmp_path / "explain"

    main(["analyze", str(first), str(second), "--json", "--checkpoint", str(tiny_checkpoint), "--device", "cpu",
          "--backend", "torch", "--explain", str(out)])
    lines = capsys.readouterr().out.splitlines()
    results = [AnalysisResult.model_validate(json.loads(line)["result"]) for line in lines]

    assert sorted(p.name for p in out.iterdir()) == ["1-photo.jpg", "2-photo.jpg"]
    for position, result in enumerate(results, start=1):
        names = sorted(a.name for a in result.artifacts)
        assert names, "the photo has a face, so it has heat maps"
        assert sorted(p.name for p in (out / f"{position}-photo.jpg").iterdir()) == names
