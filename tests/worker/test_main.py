"""`python -m worker` refuses to start without a model, instead of failing every job later."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.settings import REPO_ROOT


def test_worker_refuses_to_start_without_a_checkpoint(tmp_path: Path) -> None:
    env = {**os.environ, "MODEL_CHECKPOINT": str(tmp_path / "missing.safetensors"), "VAR_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "worker"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 1
    assert "no model checkpoint" in done.stderr
    assert "missing.safetensors" in done.stderr
