"""Start-up imports stay light: a CLI user waits for every module imported before the analysis.

Not a timing assert (the box is shared and noisy): the heavy packages that only some runs need
must simply not be in `sys.modules` after importing the pipeline or parsing CLI arguments.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.ml.conftest import REPO_ROOT

DEFERRED = ("timm", "pytorch_grad_cam", "sklearn", "onnxruntime", "onnx", "scipy")
"""timm: only to build the torch module; grad-cam and scikit-learn: only for explanations;
onnxruntime: only when the ONNX backend is opened; onnx (~0.6 s): only to write an export, the
served one is checked through onnxruntime; scipy: nothing at start-up needs it."""


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys\n{code}\nimport json\n"
             f"print(json.dumps(sorted(m for m in {DEFERRED!r} if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_pipeline_defers_heavy_packages() -> None:
    assert _loaded_after("import ml.pipeline") == []


def test_cli_argument_parsing_imports_no_model_code() -> None:
    code = ("from ml.cli import build_parser\n"
            "build_parser().parse_args(['analyze', 'clip.mp4', '--json', '--frames', '8'])\n"
            "assert 'torch' not in sys.modules, 'parsing arguments imported torch'")
    assert _loaded_after(code) == []


def test_onnx_analysis_without_explanations_never_imports_timm(tiny_checkpoint: Path, face_photo_path: Path,
                                                                tmp_path: Path) -> None:
    import torch

    from ml.model import load_checkpoint
    from ml.onnx_export import export_onnx

    export = export_onnx(load_checkpoint(tiny_checkpoint, torch.device("cpu")), tmp_path / "tiny.onnx")  # built ahead
    code = ("from pathlib import Path\nfrom ml.config import PipelineConfig\nfrom ml.pipeline import Pipeline\n"
            f"pipeline = Pipeline(PipelineConfig(backend='onnx', onnx_path=Path({str(export)!r})), "
            f"device='cpu', checkpoint=Path({str(tiny_checkpoint)!r}))\n"
            f"assert len(pipeline.run(Path({str(face_photo_path)!r})).faces) == 1\n")
    assert _loaded_after(code) == ["onnxruntime"]
