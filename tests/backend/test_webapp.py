"""The API serving the built web app in the embedded default, app routes included."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from backend.main import create_app
from tests.conftest import make_settings


def test_app_routes_get_the_app_and_everything_else_stays_a_404(env: dict[str, str], tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>app</title>")
    (dist / "assets" / "app-1.js").write_text("console.log(1)")
    settings = make_settings({**env, "FRONTEND_DIST": str(dist)})

    with TestClient(create_app(settings)) as client:
        for path in ("/", "/jobs/0123456789abcdef0123456789abcdef", "/history"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert "<title>app</title>" in response.text
        assert client.get("/assets/app-1.js").text == "console.log(1)"
        assert client.get("/assets/missing-2.js").status_code == 404
        assert client.get("/api/jobs").status_code == 200
        missing_api = client.get("/api/no-such-route")
        assert missing_api.status_code == 404
        assert missing_api.json()["error"]["code"] == "not_found"
