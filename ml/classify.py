"""Score face crops with the real/fake classifier: batched, on PyTorch or ONNX Runtime.

The PyTorch path runs under `torch.inference_mode`, channels-last, with autocast on CUDA (bf16
where the GPU has it: `ml.device.autocast_dtype`). On a CPU ONNX Runtime is faster (measured in
docs/performance.md), so `backend='auto'` picks it there. Both take the same `ml.model.preprocess`
batch and apply the checkpoint's temperature, so scores agree to ~1e-5.

For Grad-CAM the PyTorch path can keep the last conv stage's activations from the scoring
forward (`keep_features=True`): explaining then costs only a backward through the head (pool +
linear), a few milliseconds, instead of a second full forward and backward per crop.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ml.config import Backend
from ml.contracts import ClassifierBatch
from ml.device import autocast_dtype
from ml.model import LoadedModel, file_sha256, logits_to_probability, preprocess

logger = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """The requested inference backend cannot run this model here."""


@dataclass(frozen=True)
class Scores:
    """Calibrated p(fake) per crop; `embeddings` (N, D) unit-length pooled features, what tracking
    compares; `features` (N, C, h, w) on the model's device when kept (Grad-CAM); `p_synthetic` the
    synthetic-face head's probability per crop, None when the checkpoint has no head; `batches` each
    forward's size and wall time, measured around it (results copied to the CPU, so a GPU batch is done)."""

    p_fake: np.ndarray
    embeddings: np.ndarray
    features: torch.Tensor | None = None
    p_synthetic: np.ndarray | None = None
    batches: tuple[ClassifierBatch, ...] = ()


class Classifier:
    """A loaded checkpoint ready to score batches of RGB uint8 face crops."""

    def __init__(
        self,
        model: LoadedModel,
        device: torch.device,
        *,
        backend: Backend = "auto",
        batch_size: int = 16,
        onnx_path: Path | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self._onnx_session = None
        self.onnx_sha256: str | None = None
        """The SHA-256 of the ONNX file scoring runs on, when it runs on ONNX Runtime."""
        if backend == "auto":
            backend = "onnx" if device.type == "cpu" else "torch"
            if backend == "onnx":
                try:
                    self._onnx_session = self._open_onnx(onnx_path)
                except BackendError as exc:
                    logger.warning("ONNX Runtime unavailable, scoring with PyTorch: %s", exc)
                    backend = "torch"
        elif backend == "onnx":
            if device.type != "cpu":
                raise BackendError("The ONNX backend runs on the CPU only; use backend='torch' on a GPU.")
            self._onnx_session = self._open_onnx(onnx_path)
        self.backend: str = backend
        if backend == "torch":
            _ = model.module  # load and check the weights now, not in the middle of an analysis

    @property
    def module(self) -> torch.nn.Module:
        return self.model.module

    def score(self, crops: list[np.ndarray], *, keep_features: bool = False) -> Scores:
        """p(fake) for every crop, in order. `keep_features` needs (and forces) the PyTorch path."""
        head = self.model.synthetic_head
        if not crops:
            empty = np.zeros(0, dtype=np.float32)
            return Scores(empty, np.zeros((0, 0), dtype=np.float32), None, empty if head is not None else None)
        if self._onnx_session is not None and not keep_features:
            return self._score_onnx(crops)
        probabilities, pooled_rows, features, batches = [], [], [], []
        for start in range(0, len(crops), self.batch_size):
            begin = time.perf_counter()
            chunk = crops[start : start + self.batch_size]
            logits, batch_features = self._forward_torch(chunk)
            probabilities.append(logits_to_probability(logits, self.model.config.temperature).reshape(-1).cpu())
            pooled_rows.append(self._pool(batch_features).cpu().numpy())
            batches.append(_timed(len(chunk), begin))
            if keep_features:
                features.append(batch_features)
        kept = torch.cat(features) if keep_features else None
        pooled = np.concatenate(pooled_rows)
        return Scores(torch.cat(probabilities).numpy(), _unit(pooled), kept, self._synthetic(pooled), tuple(batches))

    def pooled_features(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, C) pooled features, the synthetic-face head's input (`ml.train.synthetic` fits it on them)."""
        return torch.cat([self._pool(self._forward_torch(crops[i : i + self.batch_size])[1])
                          for i in range(0, len(crops), self.batch_size)]).detach().cpu().numpy()

    def _pool(self, features: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.module.forward_head(features, pre_logits=True).float()  # type: ignore[operator]

    def _synthetic(self, pooled: np.ndarray) -> np.ndarray | None:
        """The synthetic-face head on (N, C) pooled features: the same linear map on both backends."""
        head = self.model.synthetic_head
        if head is None:
            return None
        with torch.inference_mode():
            rows = torch.from_numpy(np.ascontiguousarray(pooled, dtype=np.float32)).to(head.weight.device)
            return torch.sigmoid(head(rows)).reshape(-1).cpu().numpy()

    def features(self, crops: list[np.ndarray]) -> torch.Tensor:
        """Last conv stage activations for a few crops (Grad-CAM after ONNX scoring)."""
        return torch.cat([self._forward_torch(crops[i : i + self.batch_size])[1]
                          for i in range(0, len(crops), self.batch_size)])

    def _forward_torch(self, crops: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = preprocess(crops, self.model.config).to(self.device, non_blocking=True)
        dtype = autocast_dtype(self.device)
        autocast = (torch.autocast(device_type=self.device.type, dtype=dtype) if dtype is not None
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            features = self.module.forward_features(batch)  # type: ignore[operator]  # timm API
            logits = self.module.forward_head(features)  # type: ignore[operator]
        # a clone made outside inference mode can take part in autograd (Grad-CAM's head backward)
        return logits.float(), features.float().clone()

    def _open_onnx(self, path: Path | None):
        """An ONNX Runtime session on the export built ahead of time (`python -m ml.onnx_export`),
        refused unless it was exported from this very checkpoint."""
        from ml.onnx_export import ort_load_errors, recorded_source

        try:
            import onnxruntime
        except ImportError as exc:
            raise BackendError(f"onnxruntime is not installed: {exc}") from exc
        if path is None or not path.is_file():
            raise BackendError(f"no ONNX export at {path}; make it with `python -m ml.onnx_export <checkpoint>`")
        try:
            options = onnxruntime.SessionOptions()
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except ort_load_errors() as exc:
            raise BackendError(f"Cannot load the ONNX model {path}: {exc}") from exc
        source = recorded_source(session)
        if source != self.model.sha256:
            raise BackendError(
                f"{path} was exported from checkpoint {source}, not {self.model.sha256}: "
                "re-export it with `python -m ml.onnx_export <checkpoint>`"
            )
        self.onnx_sha256 = file_sha256(path)
        return session

    def _score_onnx(self, crops: list[np.ndarray]) -> Scores:
        from ml.onnx_export import EMBEDDING_NAME, INPUT_NAME, OUTPUT_NAME

        assert self._onnx_session is not None
        out, embeddings, batches = [], [], []
        for start in range(0, len(crops), self.batch_size):
            begin = time.perf_counter()
            chunk = crops[start : start + self.batch_size]
            batch = preprocess(chunk, self.model.config)
            array = np.ascontiguousarray(batch.numpy())  # channels-last tensor -> NCHW contiguous array
            logits, pooled = self._onnx_session.run([OUTPUT_NAME, EMBEDDING_NAME], {INPUT_NAME: array})
            out.append(logits_to_probability(torch.from_numpy(logits), self.model.config.temperature).reshape(-1))
            embeddings.append(pooled)
            batches.append(_timed(len(chunk), begin))
        pooled = np.concatenate(embeddings)
        return Scores(torch.cat(out).numpy(), _unit(pooled), None, self._synthetic(pooled), tuple(batches))


def _timed(size: int, begin: float) -> ClassifierBatch:
    return ClassifierBatch(size=size, seconds=round(time.perf_counter() - begin, 6))


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, so a dot product is the cosine similarity."""
    vectors = vectors.astype(np.float32, copy=False)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
