"""The app as a whole: every error has one shape (probes and metrics: tests/backend/health/; what it imports:
tests/test_import_boundaries.py)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from backend.main import create_app
from core.settings import Settings
from tests.conftest import make_settings


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    given = client.get("/api/jobs/missing", headers={"X-Request-ID": "abc-123"})
    generated = client.get("/api/jobs/missing")
    hostile = client.get("/api/jobs/missing", headers={"X-Request-ID": "<script>" * 20})

    assert given.headers["x-request-id"] == "abc-123"
    assert given.json()["request_id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32
    assert hostile.headers["x-request-id"] != "<script>" * 20


def test_unknown_route_is_404_with_the_error_shape(client: TestClient) -> None:
    response = client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_openapi_documents_the_upload_body(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    body = schema["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["properties"]["file"] == {"type": "string", "format": "binary"}
    assert "/api/analyze-image" in schema["paths"]
    assert "/api/analyze-video" in schema["paths"]


def test_built_frontend_is_served_at_the_root(env: dict[str, str], tmp_path) -> None:  # noqa: ANN001
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>DeepScreen</title>")
    with TestClient(create_app(make_settings({**env, "FRONTEND_DIST": str(dist)}))) as client:
        page = client.get("/")
        deep_link = client.get("/jobs/0123abcd")
        api = client.get("/api/health/live")
        missing_api = client.get("/api/no-such-route")

    assert page.status_code == 200
    assert "DeepScreen" in page.text
    assert deep_link.status_code == 200, "client-side routes get the app"
    assert "DeepScreen" in deep_link.text
    assert api.json()["status"] == "ok"
    assert missing_api.status_code == 404
    assert missing_api.json()["error"]["code"] == "not_found"


def test_unexpected_errors_are_500_without_internals(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/boom", headers={"X-Request-ID": "boom-1"})

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal"
    assert "secret" not in response.text
    assert response.headers["x-request-id"] == response.json()["request_id"] == "boom-1", "500s carry it too"


def test_api_docs_are_served_from_the_package_without_inline_scripts(client: TestClient) -> None:
    page = client.get("/api/docs")
    start = client.get("/api/docs/assets/start.js")
    bundle = client.get("/api/docs/assets/swagger-ui-bundle.js")
    css = client.get("/api/docs/assets/swagger-ui.css")
    outside = client.get("/api/docs/assets/__init__.py")
    old_docs = client.get("/docs", follow_redirects=False)
    old_schema = client.get("/openapi.json")

    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "cdn" not in page.text.lower()
    assert '"/api/openapi.json"' in start.text
    assert start.headers["content-type"].startswith("text/javascript")
    assert bundle.status_code == 200
    assert b"SwaggerUIBundle" in bundle.content
    assert css.headers["content-type"].startswith("text/css")
    assert outside.status_code == 404
    assert outside.json()["error"]["code"] == "not_found"
    assert old_docs.status_code == 308
    assert old_docs.headers["location"] == "/api/docs"
    assert old_schema.json()["info"]["title"] == "DeepScreen API", "the old schema URL still leads to it"


def test_every_route_ends_its_unit_of_work_on_its_own_thread(settings: Settings) -> None:
    """Each API route is a `UnitOfWorkRoute` (the crowd deadlock's fix, tests/reliability/test_load_regressions.py),
    so a new router cannot bring back a commit after response validation."""
    from fastapi.routing import APIRoute

    from backend.deps import UnitOfWorkRoute

    def api_routes(routes: list[Any]) -> list[APIRoute]:
        # FastAPI keeps included routers as routers (`original_router`), not as copied routes.
        found: list[APIRoute] = []
        for route in routes:
            if isinstance(route, APIRoute):
                found.append(route)
            elif hasattr(route, "original_router"):
                found += api_routes(route.original_router.routes)
        return found

    routes = api_routes(create_app(settings).routes)
    assert len(routes) > 20
    assert [route.path for route in routes if not isinstance(route, UnitOfWorkRoute)] == []
