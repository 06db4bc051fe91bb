"""68-point facial landmarks for the self-blend masks, computed once when the cache is built.

dlib's 68-point shape predictor (iBUG 300-W layout) ships inside the PyPI package
`face-recognition-models` (`shape_predictor_68_face_landmarks.dat`, 99.7 MB) and runs with the
`dlib-bin` wheel, so nothing is downloaded at run time. It is a regression tree cascade that
needs a face rectangle: we give it the production detector's box (or, for DFDC crops, where the
face lies in the crop). About 2 ms a face on one core.

mediapipe was the other candidate; dlib was chosen because its 68-point layout is the one the
self-blending paper uses (its hull types are defined on it) and the wheel installs here.
These packages are training-only (the `landmarks` extra); the product never imports them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

POINTS = 68
JAW = tuple(range(0, 17))
BROWS = tuple(range(17, 27))
NOSE = tuple(range(27, 36))
NOSE_TIP = 30
INNER = tuple(range(17, 68))
"""Brows, eyes, nose and mouth: the inner face, without the jaw line."""


def predictor_path() -> Path:
    """The 68-point model inside the installed `face_recognition_models` package (not imported:
    its `__init__` needs `pkg_resources`, which new setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise ImportError("face-recognition-models is not installed: pip install -e '.[train,landmarks]'")
    return Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"


class Landmarker:
    """dlib's 68-point predictor on RGB uint8 images, given a face box."""

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._predict = dlib.shape_predictor(str(predictor_path()))

    def __call__(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """68 x 2 float32 (x, y) pixel coordinates of the face in `box` (x1, y1, x2, y2)."""
        rect = self._dlib.rectangle(*(int(round(v)) for v in box))
        shape = self._predict(np.ascontiguousarray(image), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def missing(count: int) -> np.ndarray:
    """Landmarks for `count` images without any: NaN, so the self-blend falls back to the ellipse."""
    return np.full((count, POINTS, 2), np.nan, dtype=np.float32)
