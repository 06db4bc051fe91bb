"""The synthetic-face head: fitted, stored in the checkpoint, applied by both backends, decided on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.config import DEFAULT_AGGREGATION, PipelineConfig
from ml.contracts import MediaKind, OperatingPoint, Signal
from ml.model import FEATURE_FIELDS, weights_digest
from ml.train.synthetic import apply_head, fit_head, reencode, write_head


def test_fit_head_separates_what_is_separable_and_folds_the_scaling_in() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8)) * 50 + 100  # far from standardised: the folding must be right
    y = (x[:, 3] > 100).astype(int)
    weight, bias, _, val_auc = fit_head(x[:300], y[:300], x[300:], y[300:])
    assert val_auc > 0.97
    # the folded head on raw features ranks validation exactly as the fit on standardised ones did
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y[300:], apply_head(x[300:], weight, bias)) == pytest.approx(val_auc, abs=1e-6)


def test_reencoding_is_the_same_for_both_classes_and_seeded_by_the_file() -> None:
    crop = np.random.default_rng(1).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    a, b = reencode(crop, 64, "ab" * 32), reencode(crop, 64, "ab" * 32)
    assert a.shape == (64, 64, 3)
    assert a.dtype == np.uint8
    assert np.array_equal(a, b)


def _point(threshold: float) -> OperatingPoint:
    return OperatingPoint(signal=Signal.synthetic_face, media_kind=MediaKind.image, aggregation=DEFAULT_AGGREGATION,
                          threshold=threshold, inconclusive_threshold=threshold, calibration_set="test")


def test_the_head_travels_in_the_checkpoint_and_fills_p_synthetic(
    tiny_checkpoint: Path, tmp_path: Path, face_photo_path: Path,
) -> None:
    import torch

    from ml.classify import Classifier
    from ml.model import load_checkpoint
    from ml.onnx_export import export_onnx
    from ml.pipeline import Pipeline

    plain = load_checkpoint(tiny_checkpoint, torch.device("cpu"))
    assert plain.synthetic_head is None
    channels = Classifier(plain, torch.device("cpu"), backend="torch").pooled_features(
        [np.zeros((64, 64, 3), np.uint8)]).shape[1]
    weight = np.random.default_rng(2).normal(size=channels).astype(np.float32)
    target = tmp_path / "with-head.safetensors"
    write_head(tiny_checkpoint, target, weight, -0.5, "test head", [_point(0.0)], version="test-head")
    features = {"synthetic_head": False, "fields": FEATURE_FIELDS}
    assert weights_digest(target, **features) == weights_digest(tiny_checkpoint, **features), (
        "the head does not change the features")
    assert weights_digest(target) != weights_digest(tiny_checkpoint), "it changes the scores"
    loaded = load_checkpoint(target, torch.device("cpu"))
    assert loaded.config.synthetic_head == "test head"
    assert loaded.config.signals == (Signal.face_manipulation, Signal.synthetic_face)
    crops = [np.random.default_rng(i).integers(0, 256, (80, 80, 3), dtype=np.uint8) for i in range(3)]
    by_torch = Classifier(loaded, torch.device("cpu"), backend="torch").score(crops)
    export = export_onnx(loaded, tmp_path / "head.onnx")
    by_onnx = Classifier(loaded, torch.device("cpu"), backend="onnx", onnx_path=export).score(crops)
    features = Classifier(loaded, torch.device("cpu"), backend="torch").pooled_features(crops)
    assert by_torch.p_synthetic == pytest.approx(apply_head(features, weight, -0.5), abs=1e-4)
    assert by_onnx.p_synthetic == pytest.approx(by_torch.p_synthetic, abs=1e-4)
    assert by_onnx.p_fake == pytest.approx(by_torch.p_fake, abs=1e-4)
    result = Pipeline(PipelineConfig(explain_top_k=0), checkpoint=target).run(face_photo_path)
    assert result.faces
    assert all(f.p_synthetic is not None for f in result.faces)
    synthetic = next(s for s in result.signals if s.signal is Signal.synthetic_face)
    assert synthetic.label.value == "manipulated", "threshold 0: every face is called synthetic"
    assert result.label.value == "manipulated"
