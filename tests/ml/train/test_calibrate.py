"""Temperature scaling recovers a known temperature; the threshold separates what it can."""

from __future__ import annotations

import numpy as np
import pytest

from ml.train.calibrate import balanced_accuracy_threshold, fit_temperature


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 3.0])
def test_fit_temperature_recovers_a_known_temperature(true_temperature: float) -> None:
    rng = np.random.default_rng(0)
    calibrated = rng.normal(0.0, 2.0, size=20000)  # well-calibrated logits
    labels = (rng.random(calibrated.size) < 1 / (1 + np.exp(-calibrated))).astype(float)
    fitted = fit_temperature(calibrated * true_temperature, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.05)


def test_threshold_maximises_balanced_accuracy() -> None:
    probabilities = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9, 0.35])
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    threshold = balanced_accuracy_threshold(probabilities, labels)
    predictions = probabilities >= threshold
    assert (predictions == labels.astype(bool)).all()
