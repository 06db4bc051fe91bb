from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.classify import BackendError, Classifier
from ml.contracts import DEFAULT_CHECKPOINT
from ml.model import ModelConfig, build_classifier, file_sha256, load_checkpoint, save_checkpoint
from ml.onnx_export import export_onnx, main, onnx_path, source_sha256

MAX_COMMITTED_BYTES = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def exported(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The tiny checkpoint's export beside a copy of it, and the warnings the export raised."""
    checkpoint = tmp_path_factory.mktemp("export") / "tiny.safetensors"
    shutil.copy(tiny_checkpoint, checkpoint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_onnx(load_checkpoint(checkpoint, torch.device("cpu")), onnx_path(checkpoint))
    return checkpoint, [f"{w.category.__name__}: {w.message}" for w in caught]


def test_onnx_runtime_agrees_with_pytorch_on_a_batch(exported: tuple[Path, list[str]], face_photo: np.ndarray) -> None:
    checkpoint, _ = exported
    model = load_checkpoint(checkpoint, torch.device("cpu"))
    rng = np.random.default_rng(0)
    crops = [face_photo] + [rng.integers(0, 256, (80, 80, 3), dtype=np.uint8) for _ in range(6)]
    onnx = Classifier(model, torch.device("cpu"), backend="onnx", batch_size=4, onnx_path=onnx_path(checkpoint))
    eager = Classifier(model, torch.device("cpu"), backend="torch", batch_size=4)
    assert (onnx.backend, eager.backend) == ("onnx", "torch")
    expected = eager.score(crops).p_fake
    assert expected.shape == (7,)
    np.testing.assert_allclose(onnx.score(crops).p_fake, expected, atol=1e-3)
    # the pooled features tracking compares agree too, unit length from both backends
    embeddings = eager.score(crops).embeddings
    assert embeddings.shape[0] == 7
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(onnx.score(crops).embeddings, embeddings, atol=1e-3)
    np.testing.assert_allclose(onnx.score(crops[:1]).p_fake, expected[:1], atol=1e-3)  # any batch size
    assert onnx.onnx_sha256 == file_sha256(onnx_path(checkpoint))
    assert eager.onnx_sha256 is None


def test_the_export_sits_beside_the_checkpoint_and_names_it(exported: tuple[Path, list[str]]) -> None:
    checkpoint, caught = exported

    assert onnx_path(checkpoint) == checkpoint.with_name("tiny.onnx")
    assert source_sha256(onnx_path(checkpoint)) == file_sha256(checkpoint)
    assert not list(checkpoint.parent.glob("*.tmp"))
    deprecations = [w for w in caught if w.startswith(("DeprecationWarning", "FutureWarning"))]
    assert deprecations == [], "the dynamo exporter, not the deprecated TorchScript one"


def test_an_export_of_another_checkpoint_is_refused(exported: tuple[Path, list[str]], tmp_path: Path) -> None:
    checkpoint, _ = exported
    config = ModelConfig(architecture="test_efficientnet", input_size=64, model_id="tiny-test", version="test-1")
    retrained = tmp_path / "tiny.safetensors"
    torch.manual_seed(1)
    save_checkpoint(build_classifier(config), config, retrained, half=False)
    shutil.copy(onnx_path(checkpoint), onnx_path(retrained))  # the old export left beside a new checkpoint
    model = load_checkpoint(retrained, torch.device("cpu"))

    with pytest.raises(BackendError, match="exported from checkpoint"):
        Classifier(model, torch.device("cpu"), backend="onnx", onnx_path=onnx_path(retrained))
    fallback = Classifier(model, torch.device("cpu"), backend="auto", onnx_path=onnx_path(retrained))
    assert (fallback.backend, fallback.onnx_sha256) == ("torch", None)


def test_a_missing_export_is_never_made_at_run_time(tiny_checkpoint: Path, tmp_path: Path) -> None:
    model = load_checkpoint(tiny_checkpoint, torch.device("cpu"))
    missing = tmp_path / "none.onnx"

    with pytest.raises(BackendError, match="python -m ml.onnx_export"):
        Classifier(model, torch.device("cpu"), backend="onnx", onnx_path=missing)
    assert Classifier(model, torch.device("cpu"), backend="auto", onnx_path=missing).backend == "torch"
    assert not missing.exists()
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(BackendError, match="Cannot load the ONNX model"):
        Classifier(model, torch.device("cpu"), backend="onnx", onnx_path=tmp_path / "junk.onnx")


def test_the_shipped_export_matches_the_shipped_checkpoint(capsys: pytest.CaptureFixture[str]) -> None:
    shipped = onnx_path(DEFAULT_CHECKPOINT)

    assert shipped.is_file(), "ml/weights/ ships the ONNX export: python -m ml.onnx_export"
    assert shipped.stat().st_size <= MAX_COMMITTED_BYTES
    assert source_sha256(shipped) == file_sha256(DEFAULT_CHECKPOINT), "re-export after retraining"
    assert main(["--check"]) == 0
    assert "matches" in capsys.readouterr().out


def test_onnx_backend_refuses_a_gpu(tiny_checkpoint: Path) -> None:
    model = load_checkpoint(tiny_checkpoint, torch.device("cpu"))
    with pytest.raises(BackendError, match="CPU only"):
        Classifier(model, torch.device("cuda"), backend="onnx")
