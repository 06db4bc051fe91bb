"""Figures of one labelled set of scores: ROC AUC (with its interval), EER, TPR at a fixed FPR, ECE,
trivial baselines.

Pure numpy/scikit-learn/scipy on (label, score) pairs, so they are computed the same way on fresh
pipeline runs and on replays of stored face scores. ECE uses 15 equal-width bins.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_auc_score, roc_curve

ECE_BINS = 15
EPSILON = 1e-6
AUC_INTERVAL_LEVEL = 0.95
AUC_RESAMPLES = 2000


# --- metrics -------------------------------------------------------------------------------------


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    """The error rate where the false-positive and false-negative rates are equal (interpolated)."""
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1.0 - tpr
    index = int(np.nanargmin(np.abs(fnr - fpr)))
    if index == 0:
        return float((fpr[0] + fnr[0]) / 2)
    # Linear interpolation between the two ROC points around the crossing.
    x0, x1 = fpr[index - 1], fpr[index]
    d0, d1 = fnr[index - 1] - fpr[index - 1], fnr[index] - fpr[index]
    if d0 == d1:
        return float((fpr[index] + fnr[index]) / 2)
    t = d0 / (d0 - d1)
    t = min(max(t, 0.0), 1.0)
    return float(x0 + t * (x1 - x0))


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, target_fpr: float) -> float:
    """The highest true-positive rate with a false-positive rate of at most `target_fpr`."""
    fpr, tpr, _ = roc_curve(labels, scores)
    allowed = fpr <= target_fpr + 1e-12
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def auc_interval(labels: np.ndarray, scores: np.ndarray, *, level: float = AUC_INTERVAL_LEVEL,
                 resamples: int = AUC_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of the ROC AUC: how far the figure could move with another sample of the
    same source. A set of 49 + 49 videos moves it by several points, so a difference between two
    models, or from a target, that lies inside it says little.

    Stratified (reals and fakes resampled separately, as `scipy.stats.bootstrap` does with two
    independent samples), so every resample has both classes; BCa, or the percentile interval
    where BCa is undefined (a perfectly separated set); NaN when a class has a single item (one
    real clip: nothing to resample). The AUC is the Mann-Whitney U over n_real x n_fake, which
    equals scikit-learn's `roc_auc_score`, ties counted half.
    """
    from scipy import stats

    real, fake = scores[labels == 0], scores[labels == 1]
    if min(len(real), len(fake)) < 2:
        return math.nan, math.nan

    def auc(real_sample: np.ndarray, fake_sample: np.ndarray, axis: int = -1) -> np.ndarray:
        u = stats.mannwhitneyu(fake_sample, real_sample, axis=axis).statistic
        return u / (real_sample.shape[axis] * fake_sample.shape[axis])

    interval = None
    for method in ("BCa", "percentile"):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa warns, then returns NaN, on a degenerate jackknife
            result = stats.bootstrap((real, fake), auc, n_resamples=resamples, confidence_level=level,
                                     method=method, vectorized=True, batch=200, random_state=seed)
        interval = (float(result.confidence_interval.low), float(result.confidence_interval.high))
        if all(np.isfinite(interval)):
            break
    assert interval is not None
    return interval


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(probabilities, EPSILON, 1 - EPSILON)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def reliability(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> dict[str, list]:
    """Per equal-width bin of p(fake): mean predicted probability, observed fake rate, count."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    confidence, observed, counts = [], [], []
    for b in range(bins):
        members = index == b
        counts.append(int(members.sum()))
        confidence.append(float(probabilities[members].mean()) if members.any() else float("nan"))
        observed.append(float(labels[members].mean()) if members.any() else float("nan"))
    return {"confidence": confidence, "observed": observed, "count": counts}


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over bins of (bin share) x |mean p(fake) - observed fake rate|."""
    table = reliability(labels, probabilities, bins)
    total = len(labels)
    return float(sum(
        n / total * abs(c - o) for c, o, n in zip(table["confidence"], table["observed"], table["count"], strict=True)
        if n
    ))


def binary_metrics(labels: ArrayLike, probabilities: ArrayLike, threshold: float) -> dict[str, float]:
    """Every figure the model card reports, for one set of (label, calibrated p(fake)) pairs."""
    y = np.asarray(labels, dtype=float)
    p = np.asarray(probabilities, dtype=float)
    out: dict[str, float] = {"n": int(len(y)), "n_fake": int(y.sum()), "n_real": int(len(y) - y.sum())}
    out["accuracy"] = float(np.mean((p >= threshold) == (y == 1))) if len(y) else float("nan")
    if len(np.unique(y)) == 2:
        out["auc"] = float(roc_auc_score(y, p))
        out["auc_low"], out["auc_high"] = auc_interval(y, p)
        out["eer"] = equal_error_rate(y, p)
        out["tpr_at_fpr_1pct"] = tpr_at_fpr(y, p, 0.01)
        out["tpr_at_fpr_5pct"] = tpr_at_fpr(y, p, 0.05)
        out["balanced_accuracy"] = float(((p >= threshold)[y == 1].mean() + (p < threshold)[y == 0].mean()) / 2)
    out["log_loss"] = log_loss(y, p) if len(y) else float("nan")
    out["ece"] = expected_calibration_error(y, p) if len(y) else float("nan")
    return out


def baseline_auc(labels: Sequence[int], values: Sequence[float]) -> float:
    """AUC of a trivial feature in its better direction (its sign is not known in advance); NaNs left out."""
    x = np.asarray(values, dtype=float)
    known = np.isfinite(x)
    y = np.asarray(labels)[known]
    if len(np.unique(y)) < 2:
        return float("nan")
    auc = float(roc_auc_score(y, x[known]))
    return max(auc, 1.0 - auc)


def sharpness(image: Path | np.ndarray) -> float:
    """Variance of the Laplacian of the grey image (a file, or an RGB array): the classic blur measure."""
    import cv2

    if isinstance(image, Path):
        grey = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
    else:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var()) if grey is not None else float("nan")


# --- plots ---------------------------------------------------------------------------------------


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 5))
    for name, (labels, scores) in curves.items():
        if len(np.unique(labels)) < 2:
            continue
        fpr, tpr, _ = roc_curve(labels, scores)
        axis.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(labels, scores):.3f})")
    axis.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    axis.set(xlabel="false-positive rate", ylabel="true-positive rate", title=title, xlim=(0, 1), ylim=(0, 1))
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_reliability(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 5))
    for name, (labels, probabilities) in curves.items():
        table = reliability(labels, probabilities)
        axis.plot(table["confidence"], table["observed"], "o-", markersize=3,
                  label=f"{name} (ECE {expected_calibration_error(labels, probabilities):.3f})")
    axis.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    axis.set(xlabel="predicted p(fake)", ylabel="observed fake rate", title=title, xlim=(0, 1), ylim=(0, 1))
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
