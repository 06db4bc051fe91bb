"""Evaluation metrics on inputs whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ml.evaluate import (
    Scored,
    baseline_auc,
    binary_metrics,
    equal_error_rate,
    expected_calibration_error,
    pseudo_videos,
    tpr_at_fpr,
)


def test_perfect_separation() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    metrics = binary_metrics(labels, scores, threshold=0.5)
    assert metrics["auc"] == 1.0
    assert metrics["eer"] == 0.0
    assert metrics["tpr_at_fpr_1pct"] == 1.0
    assert metrics["accuracy"] == 1.0


def test_auc_of_a_known_ranking() -> None:
    # Pairs (fake, real) ranked correctly: 0.8>0.3, 0.8>0.6, 0.5>0.3; wrong: 0.5<0.6 -> AUC 3/4.
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.3, 0.6, 0.5, 0.8])
    assert binary_metrics(labels, scores, 0.5)["auc"] == pytest.approx(0.75)


def test_eer_of_symmetric_overlap() -> None:
    # 10 reals and 10 fakes; 2 of each fall on the wrong side of 0.5 -> FPR = FNR = 0.2.
    reals = np.r_[np.linspace(0.05, 0.4, 8), [0.6, 0.7]]
    fakes = np.r_[np.linspace(0.6, 0.95, 8), [0.3, 0.4]]
    labels = np.r_[np.zeros(10), np.ones(10)]
    assert equal_error_rate(labels, np.r_[reals, fakes]) == pytest.approx(0.2, abs=0.051)


def test_tpr_at_fpr() -> None:
    labels = np.r_[np.zeros(100), np.ones(100)]
    reals = np.linspace(0.0, 0.5, 100)
    reals[-1] = 0.99  # one false alarm above every fake
    fakes = np.r_[np.linspace(0.6, 0.9, 50), np.linspace(0.1, 0.4, 50)]
    scores = np.r_[reals, fakes]
    assert tpr_at_fpr(labels, scores, 0.01) == pytest.approx(0.5)
    assert tpr_at_fpr(labels, scores, 0.0) == 0.0


def test_ece_of_calibrated_and_overconfident_scores() -> None:
    rng = np.random.default_rng(0)
    p = rng.random(200000)
    labels = (rng.random(p.size) < p).astype(float)
    assert expected_calibration_error(labels, p) < 0.01
    # Always saying 0.9 when half are fake: ECE = |0.9 - 0.5| = 0.4.
    assert expected_calibration_error(np.r_[np.zeros(50), np.ones(50)], np.full(100, 0.9)) == pytest.approx(0.4)


def test_baseline_auc_takes_the_better_direction() -> None:
    assert baseline_auc([0, 0, 1, 1], [4, 3, 2, 1]) == 1.0


def test_pseudo_videos_keep_one_label_per_video() -> None:
    scored = [Scored(path=None, label=i % 2, face_scores=[float(i)], score=float(i)) for i in range(40)]  # type: ignore[arg-type]
    groups = pseudo_videos(scored, frames=4, seed=0)
    assert len(groups) == 10
    for label, scores in groups:
        assert len(scores) == 4
        assert all(int(s) % 2 == label for s in scores)
