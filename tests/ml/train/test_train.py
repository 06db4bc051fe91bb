"""A tiny training run on a handful of crops: it learns, checkpoints, resumes and exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.model import load_checkpoint
from ml.train.data import CachedSet
from ml.train.train import TrainSettings, cosine_with_warmup, train


def _sets(n: int = 16, size: int = 80) -> dict[str, dict[str, CachedSet]]:
    """Real crops are smooth noise, fakes carry a bright square: learnable in a few steps.

    Three sources as the cache holds them: DFDC crops used whole, LFW context crops with a
    detector box and landmarks, and a real-only source (as UTKFace) whose faces feed self-blends.
    """
    rng = np.random.default_rng(0)

    def make(context: bool, source: str, *, real_only: bool = False) -> CachedSet:
        images = rng.integers(60, 120, size=(n, size, size, 3), dtype=np.uint8)
        labels = np.zeros(n, np.int64) if real_only else np.arange(n) % 2
        images[labels == 1, size // 3 : 2 * size // 3, size // 3 : 2 * size // 3] = 250
        boxes = np.tile(np.array([[0.2, 0.2, 0.8, 0.8]], np.float32) * size, (n, 1)) if context else None
        landmarks = None
        if context:
            angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
            ring = np.stack([size / 2 + size * 0.25 * np.cos(angles), size / 2 + size * 0.25 * np.sin(angles)], 1)
            landmarks = np.tile(ring[None].astype(np.float32), (n, 1, 1))
        return CachedSet(images, labels, [f"{source}{i}" for i in range(n)], source, context, landmarks,
                         [""] * n, boxes)

    return {
        "dfdc": {split: make(False, "dfdc") for split in ("train", "val", "test")},
        "lfw": {split: make(True, "lfw") for split in ("train", "val", "test")},
        "utkface": {split: make(True, "utkface", real_only=True) for split in ("train", "val", "test")},
    }


@pytest.fixture
def settings(tmp_path: Path) -> TrainSettings:
    return TrainSettings(
        out_dir=tmp_path / "run", data_dir=tmp_path, cache_dir=tmp_path, epochs=1, samples_per_epoch=32,
        batch_size=16, input_size=64, lr=3e-3, warmup_steps=1, workers=0, device="cpu", val_monitor=16, threads=1,
        export=tmp_path / "model.safetensors", version="test", sources=("dfdc", "lfw", "utkface"),
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
    first = recorded["history"][0]
    assert {"val_auc_dfdc", "val_auc_lfw", "val_auc_pooled", "val_real_mean_p_utkface"} <= set(first)
    assert "val_auc_utkface" not in first, "a real-only source has no AUC of its own"


def test_the_mix_draws_every_available_kind_and_blends_every_real_source() -> None:
    from ml.model import ModelConfig
    from ml.train.dataset import DEFAULT_MIX, SBI_KIND, TrainMix

    sets = {key: split_sets["train"] for key, split_sets in _sets().items()}
    mix = TrainMix(sets, ModelConfig(input_size=64), 400, seed=0, mix=DEFAULT_MIX)
    assert set(mix.kinds) == {"dfdc_real", "dfdc_fake", "lfw_real", "lfw_fake", "utkface_real", SBI_KIND}
    assert {pool.data.source for pool in mix.pools[SBI_KIND]} == {"dfdc", "lfw", "utkface"}
    drawn = {mix.kinds[kind] for kind, _, _ in mix.plan}
    assert drawn == set(mix.kinds)
    image, label = mix[0]
    assert image.shape == (3, 64, 64)
    assert float(label) in (0.0, 1.0)
    with pytest.raises(ValueError, match="no sample kind"):
        TrainMix(sets, ModelConfig(input_size=64), 10, seed=0, mix={"nuaa_real": 1.0})


def test_the_ellipse_ablation_ignores_landmarks_and_the_default_uses_them() -> None:
    from dataclasses import replace

    from ml.model import ModelConfig
    from ml.train.dataset import SBI_KIND, TrainMix
    from ml.train.sbi import BlendMask

    lfw = _sets()["lfw"]["train"]
    without = replace(lfw, landmarks=None)
    config, mix = ModelConfig(input_size=64), {"lfw_real": 0.0001, SBI_KIND: 1.0}

    def sample(data, mask: BlendMask) -> torch.Tensor:
        return TrainMix({"lfw": data}, config, 4, seed=0, mix=mix, blend_mask=mask)[0][0]

    plan = TrainMix({"lfw": lfw}, config, 4, seed=0, mix=mix)
    assert plan.kinds[plan.plan[0][0]] == SBI_KIND, "the first sample is a self-blend"
    assert torch.equal(sample(lfw, BlendMask.ellipse), sample(without, BlendMask.landmarks))
    assert not torch.equal(sample(lfw, BlendMask.landmarks), sample(lfw, BlendMask.ellipse))


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


def test_the_checkpoint_takes_its_preprocessing_from_the_trained_model(settings: TrainSettings) -> None:
    """tf_efficientnet_lite0 expects inputs scaled by 0.5/0.5, not ImageNet's mean and std: a run of
    it must write (and its data must be cut with) the model's own normalisation."""
    from safetensors.torch import save_file

    from ml.model import ModelConfig, build_classifier, read_checkpoint_config

    architecture = "tf_efficientnet_lite0"
    init = settings.out_dir.parent / "init.safetensors"
    save_file(build_classifier(ModelConfig(architecture=architecture)).state_dict(), str(init))
    settings.architecture, settings.init, settings.export = architecture, init, None
    settings.samples_per_epoch, settings.val_monitor = 16, 8

    train(settings, sets=_sets())

    config = read_checkpoint_config(settings.out_dir / "epoch-1.safetensors")
    assert (config.architecture, config.mean, config.std) == (architecture, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert config.input_size == 64, "an explicit --input-size still sets the resolution"
    settings.input_size = None
    assert settings.model_config(build_classifier(config)).input_size == 224, "else the architecture's own"


def test_the_schedule_anneals_on_the_clock_when_the_time_budget_is_ahead_of_the_steps() -> None:
    spent = [0.0]
    factor = cosine_with_warmup(1000, 10, lambda: spent[0])
    assert factor(0) == pytest.approx(0.1), "warmup goes by steps"
    assert factor(20) == pytest.approx(cosine_with_warmup(1000, 10)(20)), "the steps lead while the clock is behind"
    spent[0] = 0.5
    assert factor(20) == pytest.approx(0.5), "half the budget spent: half way down the cosine"
    spent[0] = 1.2
    assert factor(20) == pytest.approx(0.0)


def test_a_spent_time_budget_stops_mid_epoch_and_still_calibrates_and_exports(settings: TrainSettings) -> None:
    settings.samples_per_epoch, settings.epochs = 10_000, 3
    settings.max_minutes = 1e-6  # spent after the first step
    summary = train(settings, sets=_sets())
    assert summary["stopped_early"] is True
    assert [h["epoch"] for h in summary["history"]] == [1], "no further epoch once the budget is spent"
    assert summary["history"][0]["images"] == settings.batch_size, "stopped after the first step, mid-epoch"
    assert load_checkpoint(settings.export, torch.device("cpu")).config.threshold > 0.0
