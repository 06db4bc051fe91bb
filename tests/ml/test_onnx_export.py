from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ml.classify import Classifier
from ml.model import load_checkpoint
from ml.onnx_export import EXPORT_FORMAT, cached_onnx


def test_onnx_runtime_agrees_with_pytorch_on_a_batch(tiny_checkpoint: Path, tmp_path: Path,
                                                     face_photo: np.ndarray) -> None:
    model = load_checkpoint(tiny_checkpoint, torch.device("cpu"))
    rng = np.random.default_rng(0)
    crops = [face_photo] + [rng.integers(0, 256, (80, 80, 3), dtype=np.uint8) for _ in range(6)]
    onnx = Classifier(model, torch.device("cpu"), backend="onnx", batch_size=4, onnx_cache_dir=tmp_path)
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


def test_export_is_cached_by_checkpoint_digest(tiny_checkpoint: Path, tmp_path: Path) -> None:
    model = load_checkpoint(tiny_checkpoint, torch.device("cpu"))
    path = cached_onnx(model, tmp_path)
    assert path == tmp_path / f"{model.sha256}-{EXPORT_FORMAT}.onnx"
    stamp = path.stat().st_mtime_ns
    assert cached_onnx(model, tmp_path) == path
    assert path.stat().st_mtime_ns == stamp  # reused, not exported again
    assert not list(tmp_path.glob("*.tmp"))


def test_onnx_backend_refuses_a_gpu(tiny_checkpoint: Path) -> None:
    from ml.classify import BackendError

    model = load_checkpoint(tiny_checkpoint, torch.device("cpu"))
    with pytest.raises(BackendError, match="CPU only"):
        Classifier(model, torch.device("cuda"), backend="onnx")
