"""/api/docs renders in a real Chromium with no network beyond the loopback, behind the shipped
nginx (its CSP included): the assets come from the API, not a CDN."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from core.settings import REPO_ROOT
from tests.conftest import IN_CI, standalone_api_settings
from tests.servers import require_binary, serve_api, serve_nginx

SCRIPT = Path(__file__).with_name("docs.mjs")


def test_api_docs_render_offline_behind_nginx(tmp_path: Path) -> None:
    chromium = require_binary("chromium", "apt-get install -y chromium")
    node = require_binary("node", "Node 20")
    if not (REPO_ROOT / "frontend" / "node_modules" / "playwright-core").is_dir():
        message = "frontend dependencies missing (npm ci)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>web app</title>")
    settings = standalone_api_settings(tmp_path)
    with serve_api(settings) as api_url, serve_nginx(
        tmp_path / "nginx", api_addresses=[api_url.removeprefix("http://")], root=site
    ) as nginx:
        run = subprocess.run(
            [node, str(SCRIPT)], env={**os.environ, "E2E_BASE_URL": nginx.url, "E2E_CHROMIUM": chromium},
            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
        )
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout.strip().splitlines()[-1])

    assert "error" not in outcome, outcome
    assert outcome["url"].endswith("/api/docs")
    assert outcome["title"].startswith("DeepScreen API")
    assert outcome["operations"] >= 15
    assert outcome["refused"] == [], "the page asked for something off the loopback"
    assert outcome["consoleErrors"] == [], "a CSP violation or a script error"
    assert any("JobToken" in scheme for scheme in outcome["schemes"]), outcome["schemes"]
