"""Probes and the metrics endpoint's access rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from backend.main import create_app
from core.settings import Settings
from tests.backend.health.factories import write_beat
from tests.conftest import make_settings

OUTSIDE = ("203.0.113.7", 40000)
LOOPBACK = ("127.0.0.1", 40000)


@pytest.fixture
def app_settings(env: dict[str, str]) -> Settings:
    return make_settings({**env, "STALE_AFTER_SECONDS": "30", "HEARTBEAT_SECONDS": "5"})


def client_for(settings: Settings, peer: tuple[str, int] = LOOPBACK) -> TestClient:
    return TestClient(create_app(settings), raise_server_exceptions=False, client=peer)


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    with client_for(app_settings) as test_client:
        yield test_client


def test_live_answers_without_dependencies(client: TestClient) -> None:
    assert client.get("/api/health/live").json() == {"status": "ok", "checks": {}}


def test_ready_needs_a_recent_worker_heartbeat(client: TestClient, app_settings: Settings) -> None:
    without = client.get("/api/health/ready")
    write_beat(app_settings, age=1)
    fresh = client.get("/api/health/ready")
    write_beat(app_settings, age=31)
    stale = client.get("/api/health/ready")

    assert without.status_code == 503
    assert without.json()["checks"] == {"database": "ok", "storage": "ok", "workers": "no_recent_heartbeat"}
    assert fresh.status_code == 200
    assert fresh.json() == {"status": "ok", "checks": {"database": "ok", "storage": "ok", "workers": "ok"}}
    assert stale.status_code == 503
    assert stale.json()["checks"]["workers"] == "no_recent_heartbeat"


def test_ready_without_the_worker_check(env: dict[str, str]) -> None:
    with client_for(make_settings({**env, "READY_REQUIRES_WORKER": "false"})) as client:
        response = client.get("/api/health/ready")

    assert response.status_code == 200
    assert "workers" not in response.json()["checks"]


def test_ready_is_503_naming_redis_when_it_is_unreachable(env: dict[str, str]) -> None:
    settings = make_settings({**env, "REDIS_URL": "redis://127.0.0.1:1/0", "READY_REQUIRES_WORKER": "false"})
    with client_for(settings) as client:
        response = client.get("/api/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "redis": "unreachable", "storage": "ok"}


def test_metrics_only_from_allowed_networks(app_settings: Settings) -> None:
    with client_for(app_settings, OUTSIDE) as outside, client_for(app_settings, LOOPBACK) as inside:
        refused = outside.get("/api/metrics")
        allowed = inside.get("/api/metrics")

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert allowed.status_code == 200
    assert allowed.headers["content-type"].startswith("text/plain")


def test_metrics_with_the_bearer_token_from_anywhere(env: dict[str, str]) -> None:
    settings = make_settings({**env, "METRICS_TOKEN": "s3cret-token", "METRICS_ALLOWED_NETWORKS": []})
    with client_for(settings, OUTSIDE) as outside, client_for(settings, LOOPBACK) as inside:
        good = outside.get("/api/metrics", headers={"Authorization": "Bearer s3cret-token"})
        wrong = outside.get("/api/metrics", headers={"Authorization": "Bearer s3cret-tokeN"})
        basic = outside.get("/api/metrics", headers={"Authorization": "Basic s3cret-token"})
        no_network = inside.get("/api/metrics")

    assert good.status_code == 200
    assert "deepscreen_http_requests_total" in good.text
    assert [wrong.status_code, basic.status_code, no_network.status_code] == [403, 403, 403]


def test_metrics_networks_setting_is_validated(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="10.0.0.0/33"):
        make_settings({**env, "METRICS_ALLOWED_NETWORKS": ["10.0.0.0/33"]})
