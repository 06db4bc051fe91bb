"""Shared fixtures for the pipeline tests: the shared face data and a session-wide detector."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The shared face data: `<repo>/../shared/data`, or `DEEPSCREEN_DATA_DIR` (tests and tools only)."""
    return Path(os.environ.get("DEEPSCREEN_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = data_dir()
    if not path.is_dir():
        pytest.skip(f"shared face data not found at {path} (set DEEPSCREEN_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def face_photo_path(shared_data: Path) -> Path:
    """A real LFW photo with exactly one person in it (checked by eye)."""
    return shared_data / "lfw-faceswap" / "real" / "real_1003.jpg"


@pytest.fixture(scope="session")
def face_photo(face_photo_path: Path) -> np.ndarray:
    return np.asarray(Image.open(face_photo_path).convert("RGB"))


@pytest.fixture(scope="session")
def second_face_photo(shared_data: Path) -> np.ndarray:
    return np.asarray(Image.open(shared_data / "lfw-faceswap" / "real" / "real_1013.jpg").convert("RGB"))


@pytest.fixture(scope="session")
def detector():
    from ml.faces import FaceDetector

    return FaceDetector("cpu")


@pytest.fixture(scope="session")
def two_people_photo(shared_data: Path) -> np.ndarray:
    """A real LFW photo with two people, one partly cut by the top edge (checked by eye)."""
    return np.asarray(Image.open(shared_data / "lfw-faceswap" / "real" / "real_1006.jpg").convert("RGB"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight checkpoint of timm's 0.1M-parameter test EfficientNet at 64 px.

    Scores from it are meaningless; tests use it for shapes, plumbing and agreement only.
    """
    import torch

    from ml.model import ModelConfig, build_classifier, save_checkpoint

    torch.manual_seed(0)
    config = ModelConfig(architecture="test_efficientnet", input_size=64, threshold=0.5, temperature=1.5,
                         model_id="tiny-test", version="test-0")
    path = tmp_path_factory.mktemp("checkpoint") / "tiny.safetensors"
    save_checkpoint(build_classifier(config), config, path, half=False)
    return path
