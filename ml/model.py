"""The one place a real/fake classifier is built, saved, loaded and fed.

A checkpoint is a safetensors file whose metadata carries the `ModelConfig` (architecture,
input size, normalisation, threshold, temperature, id, version), so the weights can never be
used with the wrong preprocessing. Training, evaluation and inference all build the model with
`build_classifier` and turn face crops into tensors with `preprocess`. At training time the
normalisation and input size come from the model itself (`with_model_preprocessing`, timm's data
config), never from constants; inference reads them back from the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ml.contracts import Aggregation, MediaKind, ModelInfo, OperatingPoint, Signal

CONFIG_METADATA_KEY = "deepscreen_config"


class CheckpointError(Exception):
    """A checkpoint that cannot be used: missing, unreadable, or not matching its config."""


class ModelConfig(BaseModel):
    """Everything inference needs besides the weights; stored inside every checkpoint."""

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    architecture: str = "efficientnet_lite0"
    input_size: int = 224
    crop_margin: float = 0.2
    """Fraction of the detector box's longer side added on every side before the square crop."""
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    threshold: float = 0.5
    """Single-frame threshold of checkpoints before 2.0; used only when `operating_points` has no match."""
    temperature: float = 1.0
    model_id: str = "deepscreen-effnet-lite0"
    version: str = "untrained"
    operating_points: tuple[OperatingPoint, ...] = ()
    """Calibrated three-outcome thresholds per signal, media kind and aggregation (`ml.aggregate.decide`)."""
    synthetic_head: str | None = None
    """Where the synthetic-face head (tensors `synthetic_head.*`) was fitted; None: the checkpoint has none."""

    @property
    def signals(self) -> tuple[Signal, ...]:
        return (Signal.face_manipulation, Signal.synthetic_face) if self.synthetic_head else (Signal.face_manipulation,)

    def points(self, kind: MediaKind, aggregation: Aggregation) -> dict[Signal, OperatingPoint]:
        """The operating point of every signal this checkpoint has, as `ml.aggregate.decide` takes them."""
        return {signal: self.operating_point(signal, kind, aggregation) for signal in self.signals}

    def operating_point(self, signal: Signal, kind: MediaKind, aggregation: Aggregation) -> OperatingPoint:
        """The calibrated point for this signal, media kind and aggregation.

        Without one (an older checkpoint, or an aggregation nobody calibrated) the single-frame
        `threshold` is used with no inconclusive band, and the result says so in `calibration_set`.
        """
        for point in self.operating_points:
            if (point.signal, point.media_kind, point.aggregation) == (signal, kind, aggregation):
                return point
        return OperatingPoint(
            signal=signal, media_kind=kind, aggregation=aggregation, threshold=self.threshold,
            inconclusive_threshold=self.threshold,
            calibration_set="uncalibrated: the checkpoint's single-frame threshold, no stated false-alarm rate",
        )


def build_classifier(config: ModelConfig) -> torch.nn.Module:
    """A timm EfficientNet with a single-logit head (logit > 0 means fake), random weights.

    timm is imported here, not at module level: it costs ~2.5 s of start-up (torchvision through
    `timm.layers._fx`), and scoring with a cached ONNX export never needs it.
    """
    import timm

    if not timm.is_model(config.architecture):
        raise CheckpointError(f"Unknown architecture {config.architecture!r}: not a timm model name.")
    return timm.create_model(config.architecture, pretrained=False, num_classes=1)


def with_model_preprocessing(config: ModelConfig, module: torch.nn.Module, *,
                             input_size: int | None = None) -> ModelConfig:
    """`config` with the mean, std and input size the model declares (`timm.data.resolve_model_data_config`).

    Training calls this once on the model it trains, so what the checkpoint stores is what the
    architecture was built for; `input_size` overrides only the resolution (a run may train at a
    reduced one for speed; the checkpoint then records that size). Square inputs only: the crop is square.
    """
    import timm.data

    data = timm.data.resolve_model_data_config(module)
    channels, height, width = data["input_size"]
    if channels != 3 or height != width:
        raise CheckpointError(f"{config.architecture!r} expects input {data['input_size']}; face crops are square RGB.")
    return config.model_copy(update={
        "input_size": input_size or height,
        "mean": tuple(float(v) for v in data["mean"]),
        "std": tuple(float(v) for v in data["std"]),
    })


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


FEATURE_FIELDS = frozenset({"architecture", "input_size", "crop_margin", "mean", "std"})
"""The config fields that change a crop's pooled features (with the backbone's tensors)."""
SCORE_FIELDS = FEATURE_FIELDS | {"temperature"}
"""... and its probabilities (with the synthetic-face head's tensors too)."""


def weights_digest(checkpoint: Path, *, synthetic_head: bool = True, fields: frozenset[str] = SCORE_FIELDS) -> str:
    """SHA-256 of what a checkpoint's outputs depend on: its tensors (the synthetic-face head's only
    with `synthetic_head`) and the config `fields`. The key of caches of features and scores:
    operating points and the version change the file's digest, not what it computes, so
    re-calibrating a checkpoint keeps what was cached for it."""
    config = read_checkpoint_config(checkpoint)
    digest = hashlib.sha256(config.model_dump_json(include=set(fields)).encode())
    for name, tensor in sorted(load_file(str(checkpoint)).items()):
        if synthetic_head or not name.startswith(SYNTHETIC_HEAD_PREFIX):
            digest.update(name.encode() + tensor.contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(model: torch.nn.Module, config: ModelConfig, path: Path, *, half: bool = True) -> str:
    """Write weights and config to `path`; returns the file's SHA-256."""
    dtype = torch.float16 if half else torch.float32
    tensors = {
        name: (value.to(dtype) if value.is_floating_point() else value).detach().cpu().contiguous()
        for name, value in model.state_dict().items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={CONFIG_METADATA_KEY: config.model_dump_json()})
    return file_sha256(path)


def read_checkpoint_config(path: Path) -> ModelConfig:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"Cannot read checkpoint {path}: {exc}") from exc
    if CONFIG_METADATA_KEY not in metadata:
        raise CheckpointError(f"{path} carries no DeepScreen model config; it is not a DeepScreen checkpoint.")
    return ModelConfig.model_validate(json.loads(metadata[CONFIG_METADATA_KEY]))


SYNTHETIC_HEAD_PREFIX = "synthetic_head."
"""Tensors of the synthetic-face head (`torch.nn.Linear` on the pooled features) inside a checkpoint."""


class LoadedModel:
    """A classifier ready for inference, with its config and the identity recorded in results.

    `module` is built on first use when the model was loaded lazily (`load_checkpoint(lazy=True)`):
    ONNX scoring needs only the config and the digest, and building the timm module costs start-up
    time a CLI user waits for. `synthetic_head` maps the classifier's pooled features to a
    synthetic-face logit (`ml.train.synthetic`); it is read at load time (two small tensors).
    """

    def __init__(self, module: torch.nn.Module | None, config: ModelConfig, sha256: str, *,
                 path: Path | None = None, device: torch.device | None = None,
                 synthetic_head: torch.nn.Linear | None = None) -> None:
        if module is None and (path is None or device is None):
            raise ValueError("A LoadedModel without a module needs the checkpoint path and device to build it.")
        self._module = module
        self.config = config
        self.sha256 = sha256
        self._path = path
        self._device = device
        self.synthetic_head = synthetic_head

    @property
    def module(self) -> torch.nn.Module:
        if self._module is None:
            assert self._path is not None
            assert self._device is not None
            # first use may come inside inference mode (a scoring call); Grad-CAM needs weights
            # that autograd can use, so they are never made as inference tensors
            with torch.inference_mode(False):
                self._module = _load_module(self._path, self.config, self._device)
        return self._module

    @property
    def module_loaded(self) -> bool:
        return self._module is not None

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(
            model_id=self.config.model_id, version=self.config.version, sha256=self.sha256,
            architecture=self.config.architecture, input_size=self.config.input_size,
        )


def load_checkpoint(path: Path, device: torch.device, *, lazy: bool = False) -> LoadedModel:
    """Load a checkpoint in float32 on `device`, in eval mode, channels-last.

    Fails with `CheckpointError` when any tensor is missing, unexpected or of another shape:
    a model must never run with silently random weights. With `lazy` only the config and digest
    are read now; the weights are loaded (and checked) when `module` is first used.
    """
    if not path.is_file():
        raise CheckpointError(f"Checkpoint not found: {path}")
    config = read_checkpoint_config(path)
    head = _load_synthetic_head(path, config, device)
    module = None if lazy else _load_module(path, config, device)
    return LoadedModel(module, config, file_sha256(path), path=path, device=device, synthetic_head=head)


def without_synthetic_head(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The classifier's tensors alone: the synthetic-face head is loaded on its own
    (`_load_synthetic_head`) and is refitted, not carried over, when the classifier trains further."""
    return {k: v for k, v in tensors.items() if not k.startswith(SYNTHETIC_HEAD_PREFIX)}


def _load_module(path: Path, config: ModelConfig, device: torch.device) -> torch.nn.Module:
    module = build_classifier(config)
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"Cannot read checkpoint {path}: {exc}") from exc
    tensors = {k: (v.float() if v.is_floating_point() else v) for k, v in without_synthetic_head(tensors).items()}
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"Checkpoint {path.name} does not match architecture {config.architecture!r}: {exc}"
        ) from exc
    module.eval().to(device=device).to(memory_format=torch.channels_last)
    return module


def _load_synthetic_head(path: Path, config: ModelConfig, device: torch.device) -> torch.nn.Linear | None:
    """The synthetic-face head's tensors alone (no timm module is built for them)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            head = {k.removeprefix(SYNTHETIC_HEAD_PREFIX): handle.get_tensor(k).float()
                    for k in handle.keys() if k.startswith(SYNTHETIC_HEAD_PREFIX)}
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"Cannot read checkpoint {path}: {exc}") from exc
    if not head:
        if config.synthetic_head is not None:
            raise CheckpointError(f"Checkpoint {path.name} names a synthetic-face head but holds no tensors for it.")
        return None
    if set(head) != {"weight", "bias"} or config.synthetic_head is None:
        raise CheckpointError(f"Checkpoint {path.name} has a malformed synthetic-face head: {sorted(head)}")
    synthetic_head = torch.nn.Linear(head["weight"].shape[1], 1)
    synthetic_head.load_state_dict(head)
    return synthetic_head.eval().to(device)


def resize_crop(crop: np.ndarray, size: int) -> np.ndarray:
    """Square RGB uint8 crop resized to `size`; area interpolation when shrinking avoids aliasing."""
    if crop.shape[0] == size and crop.shape[1] == size:
        return crop
    interpolation = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def preprocess(crops: list[np.ndarray], config: ModelConfig) -> torch.Tensor:
    """RGB uint8 HxWx3 crops to a normalised NCHW float batch, channels-last.

    The only transform between a face crop and the classifier, shared by training and inference.
    """
    batch = np.stack([resize_crop(c, config.input_size) for c in crops]).astype(np.float32) / 255.0
    mean = np.asarray(config.mean, dtype=np.float32)
    std = np.asarray(config.std, dtype=np.float32)
    batch = (batch - mean) / std
    tensor = torch.from_numpy(batch).permute(0, 3, 1, 2)
    return tensor.contiguous(memory_format=torch.channels_last)


def logits_to_probability(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Calibrated probability of 'fake' from raw logits (temperature scaling)."""
    return torch.sigmoid(logits.float() / temperature)
