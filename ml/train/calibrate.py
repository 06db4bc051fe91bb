"""Temperature scaling and the decision threshold, both fitted on the validation split only.

Temperature scaling (Guo et al., 2017) divides logits by one scalar T fitted by minimising the
validation log loss: it changes probabilities, not the ranking (AUC is unchanged). The threshold
is then chosen on the calibrated validation probabilities at the maximum balanced accuracy
(Youden's J = TPR - FPR), which weighs a missed fake and a false alarm equally whatever the class
balance of the validation set.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_curve


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, max_iter: int = 200) -> float:
    """The T > 0 minimising the log loss of sigmoid(logits / T) against `labels` (0/1)."""
    x = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels, dtype=torch.float64)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x / log_t.exp(), y)
        loss.backward()
        return loss

    optimiser.step(closure)
    return float(log_t.detach().exp())


def balanced_accuracy_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Probability threshold (predict fake when p >= threshold) maximising TPR - FPR."""
    fpr, tpr, thresholds = roc_curve(labels, probabilities)
    finite = np.isfinite(thresholds)
    best = int(np.argmax(np.where(finite, tpr - fpr, -np.inf)))
    return float(np.clip(thresholds[best], 1e-6, 1 - 1e-6))
