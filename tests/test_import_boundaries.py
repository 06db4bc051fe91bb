"""What each process imports (docs/architecture.md): the API never loads the ML runtime, so its image
and its extra (`pip install '.[api]'`) stay without torch; the worker never loads the HTTP layer.

Each check runs in a fresh interpreter, since this test process has imported everything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from core.settings import REPO_ROOT

ML_RUNTIME = ("torch", "torchvision", "timm", "facenet_pytorch", "cv2", "onnx", "onnxruntime", "pytorch_grad_cam",
              "sklearn", "matplotlib")
"""Installed only by the `worker` and `train` extras (pyproject.toml)."""
HTTP_LAYER = ("backend", "fastapi", "starlette", "uvicorn")
"""The API's packages: the worker and `core` load none of them (the shared domain is `core`)."""


def top_level(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def imported_after(code: str) -> set[str]:
    """The modules in sys.modules after running `code` in a new interpreter."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    output = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120
    ).stdout
    return set(json.loads(output.strip().splitlines()[-1]))


def test_the_api_process_never_imports_the_ml_runtime(tmp_path: Path) -> None:
    modules = imported_after(
        "from backend.main import create_app\n"
        "from core.settings import Settings\n"
        f"create_app(Settings(_env_file=None, VAR_DIR={str(tmp_path)!r}))\n"
        "import backend.jobs.routes, core.jobs.service, core.queue, backend.metrics\n"
    )

    assert "backend.main" in modules, "the probe really built the app"
    assert sorted({m.split(".")[0] for m in modules} & set(ML_RUNTIME)) == []


def test_the_worker_never_imports_the_http_layer() -> None:
    modules = imported_after("import worker.app, worker.tasks, worker.operations, worker.runner, worker.__main__\n")

    assert "worker.tasks" in modules, "the probe really loaded the worker"
    assert "core.jobs.service" in modules, "the worker runs the shared job rules"
    assert sorted(top_level(modules) & set(HTTP_LAYER)) == [], sorted(
        m for m in modules if m.split(".")[0] in HTTP_LAYER
    )


def test_core_imports_neither_the_http_layer_nor_the_ml_runtime() -> None:
    """Every module of `core` (walked, so a new one is checked too) loads without the API or torch."""
    modules = imported_after(
        "import importlib, pkgutil, core\n"
        "for info in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    importlib.import_module(info.name)\n"
    )

    assert {"core.jobs.service", "core.retention.service", "core.workers"} <= modules, "the probe walked core"
    assert sorted(top_level(modules) & {*HTTP_LAYER, *ML_RUNTIME}) == []
