from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml.cli import EXIT_CANNOT_START, EXIT_FAKE_FOUND, EXIT_FILE_FAILED, EXIT_OK, EXIT_USAGE, main
from ml.contracts import AnalysisResult


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
        assert (tmp_path / clip.name / artifact.name).is_file()


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
