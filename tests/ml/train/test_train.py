"""A tiny training run on a handful of crops: it learns, checkpoints, resumes and exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.model import load_checkpoint
from ml.train.data import CachedSet
from ml.train.train import TrainSettings, train


def _sets(n: int = 16, size: int = 80) -> tuple[dict, dict]:
    """Real crops are smooth noise, fakes carry a bright square: learnable in a few steps."""
    rng = np.random.default_rng(0)
    def make(context: bool, source: str) -> CachedSet:
        images = rng.integers(60, 120, size=(n, size, size, 3), dtype=np.uint8)
        labels = np.arange(n) % 2
        images[labels == 1, size // 3 : 2 * size // 3, size // 3 : 2 * size // 3] = 250
        return CachedSet(images, labels, [f"{source}{i}" for i in range(n)], source, context)

    dfdc = {split: make(False, "dfdc") for split in ("train", "val", "test")}
    lfw = {split: make(True, "lfw") for split in ("train", "val", "test")}
    return dfdc, lfw


@pytest.fixture
def settings(tmp_path: Path) -> TrainSettings:
    return TrainSettings(
        out_dir=tmp_path / "run", data_dir=tmp_path, cache_dir=tmp_path, epochs=1, samples_per_epoch=32,
        batch_size=16, input_size=64, lr=3e-3, warmup_steps=1, workers=0, device="cpu", val_monitor=16, threads=1,
        export=tmp_path / "model.safetensors", version="test",
    )


def test_training_runs_exports_and_resumes(settings: TrainSettings) -> None:
    sets = _sets()
    summary = train(settings, sets=sets)
    assert (settings.out_dir / "state.pt").is_file()
    assert (settings.out_dir / "epoch-1.safetensors").is_file()
    loaded = load_checkpoint(settings.export, torch.device("cpu"))
    assert loaded.config.temperature == pytest.approx(summary["temperature"])
    assert 0.0 < loaded.config.threshold < 1.0
    assert loaded.config.input_size == 64
    assert loaded.config.crop_margin == settings.crop_margin

    settings.epochs = 2
    resumed = train(settings, resume=True, sets=sets)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    recorded = json.loads((settings.out_dir / "summary.json").read_text())
    assert recorded["history"][0] == summary["history"][0], "resume kept the first epoch, did not redo it"


def test_frozen_blocks_stay_and_the_head_learns(settings: TrainSettings) -> None:
    from ml.model import ModelConfig
    from ml.pretrained import init_classifier

    settings.export = None
    settings.epochs = 2
    train(settings, sets=_sets())
    state = torch.load(settings.out_dir / "state.pt", weights_only=False)["model"]
    initial = init_classifier(ModelConfig(input_size=64)).state_dict()
    torch.testing.assert_close(state["blocks.1.0.conv_pw.weight"], initial["blocks.1.0.conv_pw.weight"])
    assert not torch.equal(state["blocks.5.0.conv_pw.weight"], initial["blocks.5.0.conv_pw.weight"])
    history = json.loads((settings.out_dir / "summary.json").read_text())["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"] + 0.05
