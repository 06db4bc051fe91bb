"""Score face crops with the real/fake classifier: batched, on PyTorch or ONNX Runtime.

The PyTorch path runs under `torch.inference_mode`, channels-last, with autocast (fp16) on
CUDA. On a CPU ONNX Runtime is faster (measured in docs/performance.md), so `backend='auto'`
picks it there. Both take the same `ml.model.preprocess` batch and apply the checkpoint's
temperature, so scores agree to ~1e-5.

For Grad-CAM the PyTorch path can keep the last conv stage's activations from the scoring
forward (`keep_features=True`): explaining then costs only a backward through the head (pool +
linear), a few milliseconds, instead of a second full forward and backward per crop.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ml.config import Backend
from ml.model import LoadedModel, logits_to_probability, preprocess

logger = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """The requested inference backend cannot run this model here."""


@dataclass(frozen=True)
class Scores:
    """Calibrated p(fake) per crop; `features` (N, C, h, w) on the model's device when kept.

    `p_synthetic`: the synthetic-face head's probability per crop, None when the checkpoint has no head.
    """

    p_fake: np.ndarray
    features: torch.Tensor | None = None
    p_synthetic: np.ndarray | None = None


class TwoHeads(torch.nn.Module):
    """Classifier + synthetic-face head in one graph: (N, 2) logits, so ONNX scores both in one pass."""

    def __init__(self, module: torch.nn.Module, head: torch.nn.Linear) -> None:
        super().__init__()
        self.module = module
        self.head = head

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        features = self.module.forward_features(batch)  # type: ignore[operator]  # timm API
        logit = self.module.forward_head(features)  # type: ignore[operator]
        pooled = self.module.forward_head(features, pre_logits=True)  # type: ignore[operator]
        return torch.cat([logit, self.head(pooled)], dim=1)


class Classifier:
    """A loaded checkpoint ready to score batches of RGB uint8 face crops."""

    def __init__(
        self,
        model: LoadedModel,
        device: torch.device,
        *,
        backend: Backend = "auto",
        batch_size: int = 16,
        onnx_cache_dir: Path | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self._onnx_session = None
        if backend == "auto":
            backend = "onnx" if device.type == "cpu" else "torch"
            if backend == "onnx":
                try:
                    self._onnx_session = self._open_onnx(onnx_cache_dir)
                except BackendError as exc:
                    logger.warning("ONNX Runtime unavailable, scoring with PyTorch: %s", exc)
                    backend = "torch"
        elif backend == "onnx":
            if device.type != "cpu":
                raise BackendError("The ONNX backend runs on the CPU only; use backend='torch' on a GPU.")
            self._onnx_session = self._open_onnx(onnx_cache_dir)
        self.backend: str = backend

    @property
    def module(self) -> torch.nn.Module:
        return self.model.module

    def score(self, crops: list[np.ndarray], *, keep_features: bool = False) -> Scores:
        """p(fake) for every crop, in order. `keep_features` needs (and forces) the PyTorch path."""
        head = self.model.synthetic_head
        if not crops:
            empty = np.zeros(0, dtype=np.float32)
            return Scores(empty, None, empty if head is not None else None)
        if self._onnx_session is not None and not keep_features:
            return self._score_onnx(crops)
        probabilities, synthetic, features = [], [], []
        for start in range(0, len(crops), self.batch_size):
            logits, batch_features = self._forward_torch(crops[start : start + self.batch_size])
            probabilities.append(logits_to_probability(logits, self.model.config.temperature).reshape(-1).cpu())
            if head is not None:
                with torch.inference_mode():
                    synthetic.append(torch.sigmoid(head(self._pool(batch_features))).reshape(-1).cpu())
            if keep_features:
                features.append(batch_features)
        kept = torch.cat(features) if keep_features else None
        return Scores(torch.cat(probabilities).numpy(), kept,
                      torch.cat(synthetic).detach().numpy() if head is not None else None)

    def pooled_features(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, C) pooled features, the synthetic-face head's input (`ml.train.synthetic` fits it on them)."""
        return torch.cat([self._pool(self._forward_torch(crops[i : i + self.batch_size])[1])
                          for i in range(0, len(crops), self.batch_size)]).detach().cpu().numpy()

    def _pool(self, features: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module.forward_head(features, pre_logits=True).float()  # type: ignore[operator]

    def features(self, crops: list[np.ndarray]) -> torch.Tensor:
        """Last conv stage activations for a few crops (Grad-CAM after ONNX scoring)."""
        return torch.cat([self._forward_torch(crops[i : i + self.batch_size])[1]
                          for i in range(0, len(crops), self.batch_size)])

    def _forward_torch(self, crops: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = preprocess(crops, self.model.config).to(self.device, non_blocking=True)
        autocast = (torch.autocast(device_type="cuda", dtype=torch.float16) if self.device.type == "cuda"
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            features = self.module.forward_features(batch)  # type: ignore[operator]  # timm API
            logits = self.module.forward_head(features)  # type: ignore[operator]
        # a clone made outside inference mode can take part in autograd (Grad-CAM's head backward)
        return logits.float(), features.float().clone()

    def _open_onnx(self, cache_dir: Path | None):
        from ml.onnx_export import cached_onnx

        try:
            import onnxruntime
        except ImportError as exc:
            raise BackendError(f"onnxruntime is not installed: {exc}") from exc
        model = self.model
        if model.synthetic_head is not None:  # one graph, two logits (the digest names the head too)
            model = LoadedModel(TwoHeads(model.module, model.synthetic_head), model.config, model.sha256)
        try:
            path = cached_onnx(model, cache_dir)
            options = onnxruntime.SessionOptions()
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except (OSError, RuntimeError, ValueError) as exc:
            raise BackendError(f"Cannot export or load the ONNX model: {exc}") from exc

    def _score_onnx(self, crops: list[np.ndarray]) -> Scores:
        from ml.onnx_export import INPUT_NAME

        assert self._onnx_session is not None
        out, synthetic = [], []
        for start in range(0, len(crops), self.batch_size):
            batch = preprocess(crops[start : start + self.batch_size], self.model.config)
            array = np.ascontiguousarray(batch.numpy())  # channels-last tensor -> NCHW contiguous array
            (logits,) = self._onnx_session.run(None, {INPUT_NAME: array})
            logits = torch.from_numpy(logits)
            out.append(logits_to_probability(logits[:, :1], self.model.config.temperature).reshape(-1))
            if logits.shape[1] > 1:
                synthetic.append(torch.sigmoid(logits[:, 1]).reshape(-1))
        return Scores(torch.cat(out).numpy(), None, torch.cat(synthetic).numpy() if synthetic else None)
