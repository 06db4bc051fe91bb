"""Every benchmark command still imports and parses its arguments.

The benchmarks run outside CI (they take minutes and print figures), so nothing else would notice
a rename that breaks their imports; `DEFAULT_CHECKPOINT` moving once did exactly that.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", ["bench.pipeline_bench", "bench.decode_bench", "bench.load", "bench.reliability"])
def test_benchmark_command_starts(module: str) -> None:
    done = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower()
