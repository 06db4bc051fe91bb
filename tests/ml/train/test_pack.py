"""The GPU pack: a seeded subsample of the cache in one small npz, unpacked into trainable sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.train.data import SPLITS, CachedSet, cache_size, save_set
from ml.train.pack import pack, unpack


def _cache(tmp_path: Path, input_size: int = 64, n: int = 24) -> Path:
    rng = np.random.default_rng(0)
    cache = tmp_path / "cache"
    for key, context, real_only in (("dfdc", False, False), ("utkface", True, True), ("ffhq_sg2", True, False)):
        size = cache_size(context, input_size)
        for split in SPLITS:
            images = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
            labels = np.zeros(n, np.int64) if real_only else np.arange(n) % 2
            boxes = np.tile(np.array([[0.2, 0.2, 0.8, 0.8]], np.float32) * size, (n, 1)) if context else None
            landmarks = rng.uniform(0.3, 0.7, (n, 68, 2)).astype(np.float32) * size
            save_set(cache, key, split, size,
                     CachedSet(images, labels, [f"{key}{i}" for i in range(n)], key, context, landmarks, None, boxes))
    return cache


def test_pack_subsamples_trained_labels_and_unpacks(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    out = tmp_path / "pack.npz"
    summary = pack(cache, out, input_size=64, counts={"dfdc": 8, "utkface": 6, "ffhq_sg2": 6}, size=48,
                   val_count=4)
    assert summary["mib"] <= 60
    assert summary["sets"]["dfdc/train"] == {"images": 8, "fake": 4}, "classes balanced"
    assert summary["sets"]["ffhq_sg2/train"]["fake"] == 0, "StyleGAN2 fakes are never trained on"
    sets = unpack(out)
    assert set(sets) == {"dfdc", "utkface", "ffhq_sg2"}
    utk = sets["utkface"]["train"]
    assert utk.images.shape == (6, 48, 48, 3)
    assert utk.context
    assert utk.boxes is not None
    np.testing.assert_allclose(utk.boxes[0], np.array([0.2, 0.2, 0.8, 0.8]) * 48, atol=1e-3)
    assert sets["dfdc"]["train"].boxes is None
    assert sets["dfdc"]["val"].images.shape[0] == 4
    again = tmp_path / "again.npz"
    pack(cache, again, input_size=64, counts={"dfdc": 8, "utkface": 6, "ffhq_sg2": 6}, size=48, val_count=4)
    np.testing.assert_array_equal(np.load(out)["jpeg"], np.load(again)["jpeg"])  # seeded: the same pack twice


def test_pack_shrinks_to_fit_its_budget(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    out = tmp_path / "small.npz"
    budget = 0.05
    summary = pack(cache, out, input_size=64, counts={"dfdc": 24, "utkface": 24}, size=64, val_count=8,
                   max_mib=budget)
    assert out.stat().st_size <= budget * 2**20
    assert summary["images"] < 24 + 24 + 16


def test_a_pack_trains(tmp_path: Path) -> None:
    from ml.train.train import TrainSettings, train

    cache = _cache(tmp_path)
    out = tmp_path / "pack.npz"
    pack(cache, out, input_size=64, counts={"dfdc": 8, "utkface": 8}, size=48, val_count=6)
    sets = unpack(out)
    settings = TrainSettings(out_dir=tmp_path / "run", data_dir=tmp_path, cache_dir=cache, epochs=1,
                             samples_per_epoch=16, batch_size=8, input_size=48, warmup_steps=1, workers=0,
                             device="cpu", threads=1, export=tmp_path / "model.safetensors", version="t",
                             sources=tuple(sets), freeze_blocks=0)
    summary = train(settings, sets=sets)
    assert (tmp_path / "model.safetensors").is_file()
    assert summary["val_size"] == 6 + 6
    assert summary["history"][0]["epoch"] == 1
    with pytest.raises(KeyError):
        sets["uadfv"]


def test_the_pack_command_takes_counts_quality_and_size(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A DFDC-heavier pack at lower quality: what the next GPU run needs (docs/training.md)."""
    from ml.train.pack import main

    cache = _cache(tmp_path)
    out = tmp_path / "pack.npz"
    assert main(["pack", str(out), "--cache-dir", str(cache), "--cache-input-size", "64", "--scale", "0.01",
                 "--count", "dfdc=400", "--count", "lfw=0", "--count", "nuaa=0", "--px", "40", "--quality", "60"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["sets"]["dfdc/train"]["images"] == 4, "400 x 0.01, classes balanced"
    assert summary["sets"]["utkface/train"]["images"] == 18, "the others keep their defaults (1,800 x 0.01)"
    assert (summary["size"], summary["quality"]) == (40, 60)
    assert set(unpack(out)) == {"dfdc", "utkface", "ffhq_sg2"}, "a count of 0 leaves a source out"
    assert unpack(out)["dfdc"]["train"].images.shape[1:] == (40, 40, 3)
    for wrong in (["--count", "celebdf=10"], ["--count", "dfdc=many"], ["--epochs", "3"]):
        with pytest.raises(SystemExit):
            main(["pack", str(out), *wrong])
