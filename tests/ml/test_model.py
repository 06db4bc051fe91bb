"""The classifier factory, checkpoints and preprocessing: every architecture builds and runs, and a
checkpoint brings back exactly the preprocessing and outputs it was saved with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from timm.data import resolve_model_data_config

from ml.model import (
    CheckpointError,
    ModelConfig,
    build_classifier,
    load_checkpoint,
    preprocess,
    save_checkpoint,
    with_model_preprocessing,
)

ARCHITECTURES = (
    *(f"efficientnet_lite{i}" for i in range(5)),
    *(f"tf_efficientnet_lite{i}" for i in range(5)),
    *(f"efficientnet_b{i}" for i in range(4)),
    "test_efficientnet",
)
"""timm's EfficientNet-Lite and B families (what docs/training.md says `--architecture` takes) and the
tiny test network the other tests use; random weights, nothing is downloaded. B4-B7 are left out:
the same blocks as B3 at 380-600 px, 5-12 s each on a loaded CPU."""


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_every_architecture_builds_and_scores_a_random_batch_at_its_input_size(architecture: str) -> None:
    torch.manual_seed(0)
    module = build_classifier(ModelConfig(architecture=architecture)).eval()
    config = with_model_preprocessing(ModelConfig(architecture=architecture), module)
    batch = torch.randn(1, 3, config.input_size, config.input_size).contiguous(memory_format=torch.channels_last)

    with torch.inference_mode():
        features = module.forward_features(batch)
        logits = module.forward_head(features)
        pooled = module.forward_head(features, pre_logits=True)

    assert config.input_size == resolve_model_data_config(module)["input_size"][1]
    assert logits.shape == (1, 1)
    assert pooled.shape == (1, module.num_features)
    assert torch.isfinite(logits).all()
    assert torch.isfinite(pooled).all()
    assert isinstance(module.get_submodule("classifier"), torch.nn.Linear)  # what init_classifier resets


def test_an_unknown_architecture_is_refused() -> None:
    with pytest.raises(CheckpointError, match="Unknown architecture"):
        build_classifier(ModelConfig(architecture="efficientnet_lite9"))


def test_preprocessing_comes_from_the_model_not_from_constants() -> None:
    """tf_efficientnet_lite0 was trained on inputs scaled to [-1, 1]: mean and std 0.5, not ImageNet's."""
    module = build_classifier(ModelConfig(architecture="tf_efficientnet_lite0"))
    config = with_model_preprocessing(ModelConfig(architecture="tf_efficientnet_lite0"), module)
    assert (config.input_size, config.mean, config.std) == (224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert with_model_preprocessing(config, module, input_size=96).input_size == 96


@pytest.mark.parametrize("half", [False, True])
def test_save_load_round_trip_keeps_preprocessing_and_outputs(tmp_path: Path, half: bool) -> None:
    torch.manual_seed(0)
    module = build_classifier(ModelConfig(architecture="tf_efficientnet_lite0")).eval()
    config = with_model_preprocessing(
        ModelConfig(architecture="tf_efficientnet_lite0", model_id="round-trip", version="t-1"), module, input_size=64,
    )
    path = tmp_path / "model.safetensors"
    sha256 = save_checkpoint(module, config, path, half=half)

    loaded = load_checkpoint(path, torch.device("cpu"))

    assert loaded.sha256 == sha256
    assert loaded.config == config
    assert (loaded.config.input_size, loaded.config.mean, loaded.config.std) == (64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for size in (40, 64, 130)]
    batch = preprocess(crops, loaded.config)
    assert batch.shape == (3, 3, 64, 64)
    manual = (crops[1].astype(np.float32) / 255.0 - 0.5) / 0.5  # already at the input size: no resize
    np.testing.assert_allclose(batch[1].permute(1, 2, 0).numpy(), manual, rtol=0, atol=1e-6)
    if half:
        module = module.half().float()  # the weights as the checkpoint stores them
    with torch.inference_mode():
        np.testing.assert_allclose(loaded.module(batch).numpy(), module(batch).numpy(), rtol=0, atol=1e-4)
