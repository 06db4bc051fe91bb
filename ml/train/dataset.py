"""Torch datasets over the cached crops: the training mix (with self-blending) and evaluation views.

Every sample's randomness comes from `numpy.random.default_rng([seed, epoch, index])`, so an
epoch is the same whatever the number of loader workers, and a resumed run replays it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ml.model import ModelConfig, preprocess
from ml.train.augment import frame, upload_augment
from ml.train.data import CONTEXT_MARGIN, CachedSet, production_fraction
from ml.train.sbi import DFDC_FACE_BOX, FaceBox, self_blend

_CONTEXT_BOX_EDGE = CONTEXT_MARGIN / (1 + 2 * CONTEXT_MARGIN)
LFW_FACE_BOX: FaceBox = (_CONTEXT_BOX_EDGE, _CONTEXT_BOX_EDGE, 1 - _CONTEXT_BOX_EDGE, 1 - _CONTEXT_BOX_EDGE)
"""The detector box inside a cached LFW context crop."""

DEFAULT_MIX = {"dfdc_real": 0.35, "lfw_real": 0.15, "dfdc_fake": 0.22, "lfw_fake": 0.10, "sbi": 0.18}
"""Half real, half fake. SBI pseudo-fakes come from the same real pools (DFDC and LFW)."""


@dataclass(frozen=True)
class Pool:
    """Indices of one source's cached set that have one label."""

    data: CachedSet
    indices: np.ndarray


def framing_fraction(data: CachedSet, config: ModelConfig) -> float:
    """DFDC crops are used whole; LFW context crops are cut to the production margin."""
    return production_fraction(config.crop_margin) if data.context else 1.0


def render(
    data: CachedSet, index: int, config: ModelConfig, rng: np.random.Generator | None, *, blend: bool
) -> np.ndarray:
    """One training (rng given) or evaluation (rng None) crop as RGB uint8 at the input size."""
    image = data.images[index]
    if blend:
        assert rng is not None
        image, _ = self_blend(image, LFW_FACE_BOX if data.context else DFDC_FACE_BOX, rng)
    crop = frame(image, framing_fraction(data, config), config.input_size, rng)
    return upload_augment(crop, rng) if rng is not None else crop


class TrainMix(Dataset):
    """`length` samples per epoch drawn from the pools by `mix`; call `set_epoch` before each."""

    def __init__(
        self,
        dfdc: CachedSet,
        lfw: CachedSet | None,
        config: ModelConfig,
        length: int,
        seed: int,
        mix: dict[str, float] | None = None,
    ) -> None:
        self.config = config
        self.length = length
        self.seed = seed
        mix = dict(mix or DEFAULT_MIX)
        self.pools: dict[str, list[Pool]] = {
            "dfdc_real": [Pool(dfdc, np.flatnonzero(dfdc.labels == 0))],
            "dfdc_fake": [Pool(dfdc, np.flatnonzero(dfdc.labels == 1))],
        }
        if lfw is not None:
            self.pools["lfw_real"] = [Pool(lfw, np.flatnonzero(lfw.labels == 0))]
            self.pools["lfw_fake"] = [Pool(lfw, np.flatnonzero(lfw.labels == 1))]
        self.pools["sbi"] = self.pools["dfdc_real"] + self.pools.get("lfw_real", [])
        mix = {k: v for k, v in mix.items() if k in self.pools and v > 0}
        self.kinds = sorted(mix)
        total = sum(mix.values())
        self.weights = np.array([mix[k] / total for k in self.kinds])
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's (kind, pool, index) plan, a pure function of (seed, epoch)."""
        self.epoch = epoch
        rng = np.random.default_rng([self.seed, epoch, 7])
        kinds = rng.choice(len(self.kinds), size=self.length, p=self.weights)
        plan = []
        for kind_index in kinds:
            pools = self.pools[self.kinds[kind_index]]
            pool_index = int(rng.integers(len(pools)))
            pool = pools[pool_index]
            plan.append((int(kind_index), pool_index, int(pool.indices[rng.integers(len(pool.indices))])))
        self.plan = plan

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        kind_index, pool_index, item = self.plan[index]
        kind = self.kinds[kind_index]
        pool = self.pools[kind][pool_index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        blend = kind == "sbi"
        label = 1.0 if blend else float(pool.data.labels[item])
        crop = render(pool.data, item, self.config, rng, blend=blend)
        return preprocess([crop], self.config)[0], torch.tensor(label)


class EvalView(Dataset):
    """Cached crops in the production framing, no augmentation, for validation and calibration."""

    def __init__(self, data: CachedSet, config: ModelConfig, indices: np.ndarray | None = None) -> None:
        self.data = data
        self.config = config
        self.indices = np.arange(len(data.labels)) if indices is None else indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = int(self.indices[index])
        crop = render(self.data, item, self.config, None, blend=False)
        return preprocess([crop], self.config)[0], torch.tensor(float(self.data.labels[item]))
