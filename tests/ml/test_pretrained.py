"""The offline ImageNet weights load into timm's Lite0 by position and still see cats and coffee."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata
from timm.data import resolve_model_data_config

from ml.model import CheckpointError, ModelConfig
from ml.pretrained import imagenet_lite0, init_classifier, map_by_position, save_lite0_backbone

CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger, Persian, Siamese, Egyptian cat
EGYPTIAN_CAT, ESPRESSO = 285, 967


def _imagenet_batch(image: np.ndarray, model: torch.nn.Module) -> torch.Tensor:
    """A centre square at the model's input size, normalised with the model's own mean and std."""
    data = resolve_model_data_config(model)
    size = data["input_size"][1]
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = cv2.resize(image[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA)
    x = (square.astype(np.float32) / 255.0 - np.array(data["mean"], np.float32)) / np.array(data["std"], np.float32)
    return torch.from_numpy(x).permute(2, 0, 1)[None]


@pytest.fixture(scope="module")
def imagenet_model() -> torch.nn.Module:
    return imagenet_lite0()


def test_chelsea_is_an_egyptian_cat(imagenet_model: torch.nn.Module) -> None:
    with torch.inference_mode():
        probabilities = imagenet_model(_imagenet_batch(skdata.chelsea(), imagenet_model)).softmax(1)[0]
    assert int(probabilities.argmax()) == EGYPTIAN_CAT
    assert float(probabilities[sorted(CAT_CLASSES)].sum()) > 0.8


def test_coffee_is_espresso(imagenet_model: torch.nn.Module) -> None:
    with torch.inference_mode():
        probabilities = imagenet_model(_imagenet_batch(skdata.coffee(), imagenet_model)).softmax(1)[0]
    assert int(probabilities.argmax()) == ESPRESSO
    assert float(probabilities[ESPRESSO]) > 0.5


def test_position_mapping_refuses_a_shape_mismatch() -> None:
    source = {"a": torch.zeros(3), "b": torch.zeros(2, 2)}
    with pytest.raises(CheckpointError, match="does not fit"):
        map_by_position(source, {"x": torch.zeros(3), "y": torch.zeros(2, 3)})
    with pytest.raises(CheckpointError, match="tensors"):
        map_by_position(source, {"x": torch.zeros(3)})


def test_classifier_gets_the_imagenet_backbone_and_a_fresh_head(imagenet_model: torch.nn.Module) -> None:
    model = init_classifier(ModelConfig())
    assert model.classifier.out_features == 1
    torch.testing.assert_close(model.conv_stem.weight, imagenet_model.conv_stem.weight)
    torch.testing.assert_close(model.blocks[6][0].conv_pwl.weight, imagenet_model.blocks[6][0].conv_pwl.weight)


def test_other_efficientnets_need_user_weights_and_load_them(tmp_path: Path) -> None:
    config = ModelConfig(architecture="efficientnet_b0")
    with pytest.raises(CheckpointError, match="init="):
        init_classifier(config)
    import timm

    donor = timm.create_model("efficientnet_b0", pretrained=False)
    path = tmp_path / "b0.pth"
    torch.save(donor.state_dict(), path)
    model = init_classifier(config, init=path)
    torch.testing.assert_close(model.conv_stem.weight, donor.conv_stem.weight)
    wrong = tmp_path / "lite0.pth"
    torch.save(timm.create_model("efficientnet_lite0", pretrained=False).state_dict(), wrong)
    with pytest.raises(CheckpointError, match="do not match"):
        init_classifier(config, init=wrong)


def test_a_deepscreen_checkpoint_is_continued_with_its_head(tmp_path: Path) -> None:
    from ml.model import save_checkpoint

    trained = init_classifier(ModelConfig())
    torch.nn.init.normal_(trained.classifier.weight)
    torch.nn.init.constant_(trained.classifier.bias, 0.7)
    path = tmp_path / "stage1.safetensors"
    save_checkpoint(trained, ModelConfig(), path, half=False)
    continued = init_classifier(ModelConfig(), init=path)
    torch.testing.assert_close(continued.classifier.weight, trained.classifier.weight)
    torch.testing.assert_close(continued.classifier.bias, trained.classifier.bias)
    torch.testing.assert_close(continued.blocks[3][0].conv_pw.weight, trained.blocks[3][0].conv_pw.weight)


def test_the_fp16_backbone_for_a_gpu_machine_starts_the_same_classifier(tmp_path: Path) -> None:
    path = save_lite0_backbone(tmp_path / "lite0.safetensors")
    assert path.stat().st_size < 8_000_000, "small enough to travel beside the pack"
    from_file = init_classifier(ModelConfig(), init=path).state_dict()
    from_package = init_classifier(ModelConfig()).state_dict()
    assert from_file.keys() == from_package.keys()
    for key, value in from_package.items():
        torch.testing.assert_close(from_file[key], value, atol=2e-3, rtol=1e-3, msg=key)


def test_the_shipped_checkpoint_with_its_synthetic_head_can_be_trained_further() -> None:
    """The default checkpoint carries `synthetic_head.*`; continuing from it once failed on those keys."""
    from ml.contracts import DEFAULT_CHECKPOINT
    from ml.model import load_checkpoint

    shipped = load_checkpoint(DEFAULT_CHECKPOINT, torch.device("cpu"))
    assert shipped.config.synthetic_head, "the premise: the shipped checkpoint has a synthetic head"
    continued = init_classifier(ModelConfig(), init=DEFAULT_CHECKPOINT)
    assert not any(key.startswith("synthetic_head") for key in continued.state_dict())
    torch.testing.assert_close(continued.classifier.weight, shipped.module.classifier.weight.float())
