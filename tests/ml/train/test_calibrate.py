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


def test_grouped_threshold_weighs_every_data_set_equally() -> None:
    # A big set whose classes overlap wants a low threshold; a small, separable set whose reals
    # reach 0.5 wants one above 0.5. Pooled, the big set decides; grouped, the small set's
    # reals are no longer sacrificed (its balanced accuracy counts as much as the big set's).
    rng = np.random.default_rng(0)
    big_real, big_fake = rng.uniform(0.0, 0.45, 2000), rng.uniform(0.3, 1.0, 2000)
    small_real, small_fake = rng.uniform(0.35, 0.5, 100), rng.uniform(0.6, 1.0, 100)
    probabilities = np.concatenate([big_real, big_fake, small_real, small_fake])
    labels = np.repeat([0, 1, 0, 1], [2000, 2000, 100, 100])
    groups = np.repeat(["big", "big", "small", "small"], [2000, 2000, 100, 100])
    pooled = balanced_accuracy_threshold(probabilities, labels)
    grouped = balanced_accuracy_threshold(probabilities, labels, groups)
    assert pooled < 0.46 < grouped

    def macro_balanced_accuracy(threshold: float) -> float:
        scores = []
        for group in ("big", "small"):
            mask = groups == group
            predicted = probabilities[mask] >= threshold
            truth = labels[mask] == 1
            scores.append((predicted[truth].mean() + (~predicted[~truth]).mean()) / 2)
        return float(np.mean(scores))

    assert macro_balanced_accuracy(grouped) > macro_balanced_accuracy(pooled)
