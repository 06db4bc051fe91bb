"""The classifier as ONNX, built ahead of time beside its checkpoint: `<checkpoint>.onnx`.

ONNX Runtime scores face crops about 1.5x faster than eager PyTorch on a 2-core CPU, so the
pipeline prefers it there. The export is made once, by `python -m ml.onnx_export`, and shipped
next to the checkpoint (ml/weights/, about 14 MB), never by a worker on first use: every worker
then runs the same file, and one that starts has nothing to write. The file names the checkpoint
it was exported from (its SHA-256 in the ONNX metadata); a worker refuses an export of another
checkpoint and scores with PyTorch instead, so a stale export can never be used.

The graph has two outputs: the logit, and the pooled feature vector (the head's input) that
tracking compares between faces (`ml.tracking`) and the synthetic-face head reads, so ONNX
scoring needs no second forward.

The export uses torch's dynamo-based exporter (`torch.export`, the one torch recommends; the
TorchScript exporter is deprecated), without silencing its warnings.
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ml.contracts import DEFAULT_CHECKPOINT
from ml.model import LoadedModel, file_sha256, load_checkpoint

if TYPE_CHECKING:
    import onnxruntime

logger = logging.getLogger(__name__)

INPUT_NAME = "input"
OUTPUT_NAME = "logit"
EMBEDDING_NAME = "embedding"
SOURCE_KEY = "deepscreen.checkpoint_sha256"
"""ONNX metadata: the SHA-256 of the checkpoint this file was exported from."""


class ScoringGraph(torch.nn.Module):
    """A timm classifier as (logit, pooled features): what inference needs from one forward."""

    def __init__(self, classifier: torch.nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.classifier.forward_features(batch)  # type: ignore[operator]  # timm API
        pooled = self.classifier.forward_head(features, pre_logits=True)  # type: ignore[operator]
        return self.classifier.get_classifier()(pooled), pooled  # type: ignore[operator]


def onnx_path(checkpoint: Path) -> Path:
    """Where the export of `checkpoint` lives: beside it, `<name>.onnx`."""
    return checkpoint.with_suffix(".onnx")


def export_onnx(model: LoadedModel, path: Path) -> Path:
    """Write `model` (NCHW float32 in; one logit and one pooled feature vector per crop out; any
    batch size) to `path`, with the checkpoint's digest, id and version in the ONNX metadata.

    Exports a float32 CPU copy, so the caller's module stays where and how it is. Writes to a
    temporary file and renames it: a reader never sees half a model.
    """
    import onnx

    module = ScoringGraph(copy.deepcopy(model.module).float().cpu().to(memory_format=torch.contiguous_format)).eval()
    size = model.config.input_size
    example = torch.zeros(2, 3, size, size)  # 2, not 1: a batch of one would be specialised away
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(
        module, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME, EMBEDDING_NAME],
        dynamic_shapes=({0: batch},), optimize=True, verbose=False,
    )
    proto = program.model_proto
    for key, value in {SOURCE_KEY: model.sha256, "deepscreen.model_id": model.config.model_id,
                       "deepscreen.version": model.config.version}.items():
        proto.metadata_props.add(key=key, value=value)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".onnx.tmp")
    os.close(handle)
    try:
        onnx.save_model(proto, temporary)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def ort_load_errors() -> tuple[type[Exception], ...]:
    """What ONNX Runtime raises for a file it cannot load: its own types derive from Exception, not
    RuntimeError. A function, so importing this module does not import onnxruntime."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return (OSError, RuntimeError, ValueError, state.Fail, state.InvalidArgument, state.InvalidGraph,
            state.InvalidProtobuf, state.NoSuchFile, state.RuntimeException)


def recorded_source(session: onnxruntime.InferenceSession) -> str | None:
    """The checkpoint digest an export records (None when it records none), read through the session
    that serves it: importing `onnx` to read it would cost every analysis process ~0.6 s."""
    return session.get_modelmeta().custom_metadata_map.get(SOURCE_KEY)


def source_sha256(path: Path) -> str | None:
    """`recorded_source` of the export at `path`; ValueError when the file is no ONNX model."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except ort_load_errors() as exc:
        raise ValueError(f"not an ONNX model: {exc}") from exc
    return recorded_source(session)


def main(argv: list[str] | None = None) -> int:
    """`python -m ml.onnx_export [CHECKPOINT] [--output PATH] [--check]`."""
    parser = argparse.ArgumentParser(prog="python -m ml.onnx_export", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", nargs="?", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--output", type=Path, help="default: beside the checkpoint, <name>.onnx")
    parser.add_argument("--check", action="store_true", help="only check that the export matches the checkpoint")
    args = parser.parse_args(argv)
    output = args.output or onnx_path(args.checkpoint)
    if args.check:
        current = output.is_file() and source_sha256(output) == file_sha256(args.checkpoint)
        sys.stdout.write(f"{output}: {'matches' if current else 'missing or stale for'} {args.checkpoint}\n")
        return 0 if current else 1
    model = load_checkpoint(args.checkpoint, torch.device("cpu"))
    export_onnx(model, output)
    sys.stdout.write(f"{output}: {output.stat().st_size} bytes, sha256 {file_sha256(output)}, "
                     f"from checkpoint {model.sha256}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
