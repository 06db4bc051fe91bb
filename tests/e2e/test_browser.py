"""The web app in a real browser against the real stack, all on loopback: nginx serving the
built frontend and proxying to the API (SQLite, embedded broker), and a real Celery worker
running the real pipeline on a real clip from the shared data.

The scenarios run in one Chromium session (tests/e2e/browser.mjs, playwright-core with Debian's
`chromium`); each test below asserts one scenario's outcome. Needs `frontend/dist` (npm run
build) and `frontend/node_modules` (npm ci); in CI (CI=true) anything missing fails the run.
Set DEEPSCREEN_UPDATE_SCREENSHOT=1 to copy the result page's screenshot, faces blurred, to docs/.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from PIL import Image

from core.settings import REPO_ROOT
from tests.conftest import IN_CI, TEST_SECRET, WorkerProcess, alembic_config, data_dir, make_settings
from tests.servers import require_binary, serve_api, serve_nginx

pytestmark = pytest.mark.slow

FRONTEND = REPO_ROOT / "frontend"
SCRIPT = Path(__file__).with_name("browser.mjs")
SCREENSHOT = REPO_ROOT / "docs" / "screenshot-result.png"
VIDEO = Path("videos") / "fake" / "ffpp_deepfakes_003_000.mp4"
CANCEL_VIDEO = Path("videos") / "real" / "celebdf_id0_0000.mp4"
IMAGE = Path("lfw-faceswap") / "real"
RUN_TIMEOUT_SECONDS = 420


def _require(condition: bool, message: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it")
    pytest.skip(message)


def _first_image(folder: Path) -> Path:
    images = sorted(folder.glob("*.jpg"))
    _require(bool(images), f"no images in {folder}")
    return images[0]


def _no_face_image(path: Path) -> Path:
    """A picture with no face in it (a sky-to-ground gradient), made here rather than stored."""
    sky, ground = (110, 160, 220), (90, 120, 60)
    image = Image.new("RGB", (320, 240))
    for y in range(240):
        mix = y / 239
        colour = tuple(round(a + (b - a) * mix) for a, b in zip(sky, ground, strict=True))
        image.paste(colour, (0, y, 320, y + 1))
    image.save(path)
    return path


@pytest.fixture(scope="module")
def browser_results(tmp_path_factory: pytest.TempPathFactory, model_checkpoint: Path) -> dict[str, Any]:
    chromium = require_binary("chromium", "apt-get install -y chromium")
    node = require_binary("node", "Node 20")
    _require((FRONTEND / "dist" / "index.html").is_file(), "the web app is not built (cd frontend && npm run build)")
    _require((FRONTEND / "node_modules" / "playwright-core").is_dir(), "frontend dependencies missing (npm ci)")
    video, image, cancel_video = data_dir() / VIDEO, _first_image(data_dir() / IMAGE), data_dir() / CANCEL_VIDEO
    _require(video.is_file(), f"the test clip {video} is missing")
    _require(cancel_video.is_file(), f"the test clip {cancel_video} is missing")

    tmp = tmp_path_factory.mktemp("e2e")
    no_face = _no_face_image(tmp / "landscape.png")
    database_url = f"sqlite:///{tmp / 'deepscreen.db'}"
    command.upgrade(alembic_config(database_url), "head")
    env = {
        "ENVIRONMENT": "test", "SECRET_KEY": TEST_SECRET, "VAR_DIR": str(tmp / "var"), "DATABASE_URL": database_url,
        "REDIS_URL": "", "MODEL_CHECKPOINT": str(model_checkpoint), "FRONTEND_DIST": str(tmp / "no-frontend"),
        "REAPER_MODE": "off", "PIPELINE_FRAMES": "8", "PIPELINE_EXPLAIN_TOP_K": "3", "LOG_LEVEL": "INFO",
        "PIPELINE_EXPLAIN_BUDGET_SECONDS": "300",  # overlays even on a busy CI machine
        # Accounts optional: anonymous jobs (reached by their token) and signed-in users side by side.
        "AUTH_MODE": "optional", "PASSWORD_HASH_TIME_COST": "1", "PASSWORD_HASH_MEMORY_KIB": "8192",
        # Every browser context shares 127.0.0.1; the rate limits have their own tests.
        "REQUEST_RATE_LIMIT": "0", "UPLOAD_RATE_LIMIT": "0",
    }
    out = tmp / "browser"
    worker = WorkerProcess(env, tmp / "worker.log", "e2e")
    try:
        with serve_api(make_settings(env)) as api_url, serve_nginx(
            tmp / "nginx", api_addresses=[api_url.removeprefix("http://")], root=FRONTEND / "dist"
        ) as nginx:
            run = subprocess.run(
                [node, str(SCRIPT)],
                env={
                    **os.environ, "E2E_BASE_URL": nginx.url, "E2E_CHROMIUM": chromium, "E2E_VIDEO": str(video),
                    "E2E_IMAGE": str(image), "E2E_NO_FACE_IMAGE": str(no_face),
                    "E2E_CANCEL_VIDEO": str(cancel_video), "E2E_OUT": str(out),
                },
                capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, cwd=REPO_ROOT,
            )
    finally:
        worker.stop()
    results_path = out / "results.json"
    assert results_path.is_file(), f"no results:\n{run.stdout}\n{run.stderr}\n{worker.log()[-4000:]}"
    results: dict[str, Any] = json.loads(results_path.read_text())
    results["_logs"] = f"{run.stderr[-4000:]}\n--- worker log ---\n{worker.log()[-4000:]}\n--- artifacts in {out} ---"
    if os.environ.get("DEEPSCREEN_UPDATE_SCREENSHOT") == "1" and (out / "readme.png").is_file():
        # A 256-colour palette keeps the README's image small; the UI has few colours anyway.
        with Image.open(out / "readme.png") as shot:
            shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(SCREENSHOT, optimize=True)
    return results


def _passed(results: dict[str, Any], name: str) -> dict[str, Any]:
    outcome = results.get(name)
    assert outcome is not None, f"scenario {name} did not run\n{results['_logs']}"
    assert outcome["ok"], f"{outcome.get('error')}\n{results['_logs']}"
    return dict(outcome["details"])


def test_a_real_clip_shows_progress_then_a_verdict_with_overlays(browser_results: dict[str, Any]) -> None:
    details = _passed(browser_results, "analyze_video")
    assert details["overlays"] >= 2
    assert details["people"] >= 1
    assert "Live" in details["modes"]
    assert details["uploadProgress"], "the upload progress bar never moved"


def test_a_rejected_file_is_explained(browser_results: dict[str, Any]) -> None:
    assert "not supported" in _passed(browser_results, "rejected_file")["message"]


def test_the_upload_works_from_the_keyboard(browser_results: dict[str, Any]) -> None:
    assert "empty" in _passed(browser_results, "keyboard_upload")["message"]


def test_the_job_is_in_the_history_and_its_link_reloads(browser_results: dict[str, Any]) -> None:
    _passed(browser_results, "history")


def test_a_share_link_opens_the_result_in_another_browser_until_revoked(browser_results: dict[str, Any]) -> None:
    details = _passed(browser_results, "share_link")
    assert "read-only" in details["note"]
    assert details["afterRevoke"] == "Shared result not available"


def test_a_user_signs_in_and_finds_the_job_in_their_history(browser_results: dict[str, Any]) -> None:
    details = _passed(browser_results, "accounts")
    if "skipped" in details:
        pytest.skip(details["skipped"])
    assert details["jobId"]


def test_another_person_cannot_open_a_job_url(browser_results: dict[str, Any]) -> None:
    details = _passed(browser_results, "other_people_get_nothing")
    assert details["answers"], "no job was tried"


def test_progress_falls_back_to_polling_when_the_event_stream_fails(browser_results: dict[str, Any]) -> None:
    details = _passed(browser_results, "polling_fallback")
    assert details["polls"] >= 2


def test_the_result_fits_a_phone_screen(browser_results: dict[str, Any]) -> None:
    assert _passed(browser_results, "phone_layout")["overflow"] <= 0


def test_the_analysis_time_is_the_pipelines_total(browser_results: dict[str, Any]) -> None:
    details = _passed(browser_results, "analysis_time")
    assert details["summed"] > details["total"], "the report's stage times no longer include a total"


def test_the_three_outcomes_and_borderline_scores_are_shown_on_a_phone(browser_results: dict[str, Any]) -> None:
    details = _passed(browser_results, "three_outcomes")
    assert {name: case["title"] for name, case in details.items()} == {
        "manipulated": "Signs of manipulation", "no_signs": "No signs of manipulation found",
        "in_band": "Inconclusive", "near_threshold": "Signs of manipulation",
    }


def test_a_photo_without_a_face_is_inconclusive_not_failed(browser_results: dict[str, Any]) -> None:
    assert _passed(browser_results, "no_face_photo")["title"] == "Inconclusive"


def test_history_and_people_keep_their_columns_on_a_phone(browser_results: dict[str, Any]) -> None:
    details = _passed(browser_results, "phone_history_and_people")
    assert details["cells"] == details["columns"]
    assert details["axisPx"] >= 11


def test_cancel_asks_first_and_a_canceled_job_can_be_run_again(browser_results: dict[str, Any]) -> None:
    assert len(_passed(browser_results, "cancel_and_rerun")["questions"]) == 1


def test_the_about_page_says_what_a_score_is_not(browser_results: dict[str, Any]) -> None:
    _passed(browser_results, "about_page")


def test_pages_have_no_serious_accessibility_violations(browser_results: dict[str, Any]) -> None:
    _passed(browser_results, "accessibility")


def test_no_console_errors(browser_results: dict[str, Any]) -> None:
    _passed(browser_results, "no_console_errors")
