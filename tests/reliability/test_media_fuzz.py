"""Fuzz `ml.media.sniff`/`probe` with atheris for a bounded time (DEEPSCREEN_ATHERIS_SECONDS, 30 s
by default): probing arbitrary bytes either describes the media or raises `AnalysisError`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from ml.contracts import AnalysisError, ErrorCode, MediaLimits
from ml.media import probe
from tests.reliability.corpus import mp4_unknown_codec

SECONDS = int(os.environ.get("DEEPSCREEN_ATHERIS_SECONDS", "30"))


def test_probe_never_raises_anything_but_analysis_error(tmp_path: Path) -> None:
    seeds = tmp_path / "corpus"
    completed = subprocess.run(
        [sys.executable, "-m", "tests.reliability.fuzz_media", str(seeds), f"-max_total_time={SECONDS}",
         "-timeout=20", "-rss_limit_mb=3072", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=SECONDS + 120,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-6000:]
    assert "stat::number_of_executed_units" in output, output[-3000:]
    runs = int(output.split("stat::number_of_executed_units:")[1].split()[0])
    assert runs > 50, f"the fuzzer ran only {runs} inputs"
    assert list(tmp_path.glob("crash-*")) == []


@pytest.mark.parametrize("build", [mp4_unknown_codec], ids=["mp4-unknown-codec"])
def test_inputs_the_fuzzer_found_are_refused_as_corrupt(tmp_path: Path, build: Callable[[], bytes]) -> None:
    path = tmp_path / "input"
    path.write_bytes(build())
    with pytest.raises(AnalysisError) as caught:
        probe(path, MediaLimits())
    assert caught.value.code is ErrorCode.corrupt_media
