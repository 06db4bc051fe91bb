"""Export a classifier to ONNX and keep the export in a cache keyed by the checkpoint's SHA-256.

ONNX Runtime scores face crops about 1.5x faster than eager PyTorch on a 2-core CPU, so the
pipeline prefers it there. The export is made once per checkpoint, on first use, into a user
cache directory (never the package directory, which may be read-only):
`<cache>/<sha256>-<EXPORT_FORMAT>.onnx`. A new checkpoint has a new digest, and a new graph layout
a new format tag, so a stale export can never be used.

The graph has two outputs: the logit, and the pooled feature vector (the head's input) that
tracking compares between faces (`ml.tracking`), so ONNX scoring needs no second forward.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch

from ml.model import LoadedModel

logger = logging.getLogger(__name__)

OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "logit"
EMBEDDING_NAME = "embedding"
EXPORT_FORMAT = "logit-embedding"
"""Names the outputs of the graph; part of the cache file name."""


class ScoringGraph(torch.nn.Module):
    """A timm classifier as (logit, pooled features): what inference needs from one forward."""

    def __init__(self, classifier: torch.nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.classifier.forward_features(batch)  # type: ignore[operator]  # timm API
        pooled = self.classifier.forward_head(features, pre_logits=True)  # type: ignore[operator]
        return self.classifier.get_classifier()(pooled), pooled  # type: ignore[operator]


def default_cache_dir() -> Path:
    """`~/.cache/deepscreen`: where exports live unless the caller names a directory."""
    return Path.home() / ".cache" / "deepscreen"


def export_onnx(module: torch.nn.Module, input_size: int, path: Path) -> Path:
    """Write `module` (NCHW float32 in; one logit and one pooled feature vector per crop out) to `path`.

    Exports a float32 CPU copy, so the caller's module stays where and how it is. Writes to a
    temporary file and renames it: concurrent workers never read a half-written model.
    """
    export_module = ScoringGraph(copy.deepcopy(module).float().cpu().to(memory_format=torch.contiguous_format)).eval()
    example = torch.zeros(1, 3, input_size, input_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".onnx.tmp")
    os.close(handle)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                export_module, (example,), temporary, dynamo=False, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME, EMBEDDING_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}, EMBEDDING_NAME: {0: "batch"}},
            )
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def cached_onnx(model: LoadedModel, cache_dir: Path | None = None) -> Path:
    """The ONNX export of `model`, made on first use and reused afterwards."""
    path = (cache_dir or default_cache_dir()) / f"{model.sha256}-{EXPORT_FORMAT}.onnx"
    if path.is_file():
        return path
    logger.info("Exporting %s (%s) to ONNX at %s", model.config.model_id, model.sha256[:12], path)
    return export_onnx(model.module, model.config.input_size, path)
