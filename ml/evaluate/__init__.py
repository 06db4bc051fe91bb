"""Evaluate a checkpoint through the production pipeline on any labelled folder or named set.

`python -m ml.evaluate --out runs/eval [--set NAME ...] [--folder DIR ...]` (see `__main__`):

- `sets`: what an entry is (image, video, or a folder of frames = one sequence) and the named
  sets of the data protocol (docs/training.md);
- `scoring`: runs `Pipeline.run` / `Pipeline.run_frames` once per file, caches the faces it scored,
  and replays `ml.aggregate.decide` on them (no copy of the decision rule);
- `report`: per set and aggregation, AUC, EER, TPR at 1 % / 5 % FPR, false-alarm and catch rates
  at the checkpoint's operating points, ECE, files without a face, file-size and sharpness baselines;
- `metrics`: the figures themselves, pure numpy/scikit-learn/scipy.
"""

from ml.evaluate.metrics import (
    auc_interval,
    baseline_auc,
    binary_metrics,
    equal_error_rate,
    expected_calibration_error,
    log_loss,
    reliability,
    sharpness,
    tpr_at_fpr,
)

__all__ = [
    "auc_interval", "baseline_auc", "binary_metrics", "equal_error_rate", "expected_calibration_error", "log_loss",
    "reliability", "sharpness", "tpr_at_fpr",
]
