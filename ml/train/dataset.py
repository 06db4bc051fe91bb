"""Torch datasets over the cached crops: the training mix (with self-blending) and evaluation views.

Every sample's randomness comes from `numpy.random.default_rng([seed, epoch, index])`, so an
epoch is the same whatever the number of loader workers, and a resumed run replays it exactly.

Sample kinds are `<source>_real`, `<source>_fake` (a source's own fakes) and `sbi` (a self-blend
of a real face drawn from every trained source's reals, each source equally likely).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ml.crop import square_box
from ml.model import ModelConfig, preprocess
from ml.train.augment import square_crop_resize, upload_augment
from ml.train.data import CONTEXT_MARGIN, CachedSet
from ml.train.sbi import DFDC_FACE_BOX, BlendMask, FaceBox, self_blend

_CONTEXT_BOX_EDGE = CONTEXT_MARGIN / (1 + 2 * CONTEXT_MARGIN)
CONTEXT_FACE_BOX: FaceBox = (_CONTEXT_BOX_EDGE, _CONTEXT_BOX_EDGE, 1 - _CONTEXT_BOX_EDGE, 1 - _CONTEXT_BOX_EDGE)
"""Where the detector box lies in a context crop that the frame did not clip."""
LFW_FACE_BOX = CONTEXT_FACE_BOX

SBI_KIND = "sbi"
LEGACY_MIX = {"dfdc_real": 0.35, "lfw_real": 0.15, "dfdc_fake": 0.22, "lfw_fake": 0.10, "sbi": 0.18}
"""The 1.x mix (DFDC and LFW only): the ablation baseline "today's mix with DFDC/LFW fakes"."""
DEFAULT_MIX = {
    "dfdc_real": 0.10, "lfw_real": 0.06, "utkface_real": 0.14, "nuaa_real": 0.08, "ffhq_sg2_real": 0.12,
    "sbi": 0.38, "dfdc_fake": 0.09, "lfw_fake": 0.03,
}
"""2.x: half real from five sources (most people from UTKFace and FFHQ), and mostly self-blends
as fakes (the generator-free signal), with a little of DFDC's and LFW's own fakes."""
SBI_ONLY_MIX = {
    "dfdc_real": 0.10, "lfw_real": 0.06, "utkface_real": 0.14, "nuaa_real": 0.08, "ffhq_sg2_real": 0.12,
    "sbi": 0.50,
}
"""The ablation "real faces + self-blends only": no generator's fakes at all."""
MIXES = {"default": DEFAULT_MIX, "legacy": LEGACY_MIX, "sbi_only": SBI_ONLY_MIX}


def kinds_of(sources: list[str] | tuple[str, ...]) -> list[str]:
    """Every sample kind a set of sources offers."""
    return [f"{s}_{label}" for s in sources for label in ("real", "fake")] + [SBI_KIND]


@dataclass(frozen=True)
class Pool:
    """Indices of one source's cached set that have one label."""

    data: CachedSet
    indices: np.ndarray


def production_square(data: CachedSet, index: int, crop_margin: float) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the production crop inside a cached image.

    Context crops carry their detector box: the production crop is `ml.crop.square_box` of it at
    `crop_margin`, clipped and shifted at the frame edge exactly as production does (UTKFace's
    faces fill their photos). DFDC crops are used whole.
    """
    side_px = data.images.shape[1]
    if not data.context or data.boxes is None:
        return side_px / 2, side_px / 2, float(side_px)
    box = tuple(float(v) for v in data.boxes[index])
    left, top, right, bottom = square_box(box, crop_margin, side_px, side_px)  # type: ignore[arg-type]
    side = float(min(right - left, bottom - top))
    return (left + right) / 2, (top + bottom) / 2, side


def frame_square(
    image: np.ndarray, square: tuple[float, float, float], size: int, rng: np.random.Generator | None
) -> np.ndarray:
    """Cut `square` at `size` px; with `rng`, jitter its scale (+-15 %) and position (+-4 %),
    so the model tolerates detector jitter and the DFDC/production framing difference."""
    cx, cy, side = square
    if rng is not None:
        side *= rng.uniform(0.85, 1.15)
        cx += rng.uniform(-0.04, 0.04) * side
        cy += rng.uniform(-0.04, 0.04) * side
    return square_crop_resize(image, (cx, cy), side, size)


def _face_box(data: CachedSet, index: int) -> FaceBox:
    """The face box as fractions of the cached image (for the ellipse fallback)."""
    if data.context and data.boxes is not None:
        side = float(data.images.shape[1])
        x1, y1, x2, y2 = (float(v) / side for v in data.boxes[index])
        return (x1, y1, x2, y2)
    return CONTEXT_FACE_BOX if data.context else DFDC_FACE_BOX


def render(
    data: CachedSet, index: int, config: ModelConfig, rng: np.random.Generator | None, *, blend: bool,
    blend_mask: BlendMask = BlendMask.landmarks,
) -> np.ndarray:
    """One training (rng given) or evaluation (rng None) crop as RGB uint8 at the input size."""
    image = np.asarray(data.images[index])
    if blend:
        assert rng is not None
        use_landmarks = blend_mask == BlendMask.landmarks and data.landmarks is not None
        landmarks = data.landmarks[index] if use_landmarks else None
        image, _ = self_blend(image, _face_box(data, index), rng, landmarks)
    crop = frame_square(image, production_square(data, index, config.crop_margin), config.input_size, rng)
    return upload_augment(crop, rng) if rng is not None else crop


class TrainMix(Dataset):
    """`length` samples per epoch drawn from the pools by `mix`; call `set_epoch` before each.

    `sets` maps a source key to its training set. Kinds whose pool is empty or absent are left
    out of the mix (and the remaining shares renormalised).
    """

    def __init__(
        self,
        sets: dict[str, CachedSet],
        config: ModelConfig,
        length: int,
        seed: int,
        mix: dict[str, float] | None = None,
        blend_mask: BlendMask = BlendMask.landmarks,
    ) -> None:
        self.config = config
        self.blend_mask = blend_mask
        self.length = length
        self.seed = seed
        mix = dict(mix or DEFAULT_MIX)
        self.pools: dict[str, list[Pool]] = {}
        for key, data in sets.items():
            for label, name in ((0, "real"), (1, "fake")):
                indices = np.flatnonzero(data.labels == label)
                if len(indices):
                    self.pools[f"{key}_{name}"] = [Pool(data, indices)]
        reals = [pool for kind, pools in self.pools.items() if kind.endswith("_real") and kind in mix
                 for pool in pools]
        if reals:
            self.pools[SBI_KIND] = reals
        mix = {k: v for k, v in mix.items() if k in self.pools and v > 0}
        if not mix:
            raise ValueError(f"no sample kind of the mix is available; the data offers {sorted(self.pools)}")
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
        blend = kind == SBI_KIND
        label = 1.0 if blend else float(pool.data.labels[item])
        crop = render(pool.data, item, self.config, rng, blend=blend, blend_mask=self.blend_mask)
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
