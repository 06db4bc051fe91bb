"""Nobody but a job's owner (or the holder of its token) gets anything of it, on any job route
or the live channel: other users, anonymous clients, wrong tokens, expired or foreign access
tokens, ended sessions and revoked API keys all get a 404 or a 401 and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.accounts.security import issue_access_token
from core.db import utcnow
from core.jobs.models import Job, JobState
from tests.backend.accounts.conftest import Account, actor, register, settings_of, upload
from tests.backend.factories import make_result
from tests.backend.health.factories import write_beat

SECRET = "only-for-the-owner"

JOB_ROUTES = [
    ("GET", "/api/jobs/{id}"),
    ("GET", "/api/jobs/{id}/artifacts/report.json"),
    ("GET", "/api/jobs/{id}/events"),
    ("DELETE", "/api/jobs/{id}"),
]


@dataclass
class OwnedJob:
    id: str
    token: str
    owner: Account


@pytest.fixture
def owned_job(app: FastAPI) -> OwnedJob:
    """A finished job of user A, with a report artifact (so every route has something to give)."""
    owner = register(app, "alice@example.com")
    created = upload(owner.client, headers={"X-CSRF-Token": owner.csrf_token})
    assert created.status_code == 202, created.text
    job_id, token = created.json()["id"], created.json()["access_token"]
    with app.state.database.session() as session:
        job = session.get(Job, job_id)
        job.state, job.progress = JobState.succeeded, 100.0
        job.result = {**make_result().model_dump(mode="json"), "notes": [SECRET]}
    directory = settings_of(app).storage_dir / "artifacts" / job_id
    directory.mkdir(parents=True)
    (directory / "report.json").write_text(f'{{"notes": ["{SECRET}"]}}')
    return OwnedJob(job_id, token, owner)


def call(client: TestClient, method: str, route: str, job_id: str, **kwargs: object) -> object:
    return client.request(method, route.format(id=job_id), **kwargs)  # type: ignore[arg-type]


def intruders(app: FastAPI, job: OwnedJob) -> dict[str, tuple[TestClient, dict[str, str], int]]:
    """Each way of asking without the right to: (client, headers, expected status)."""
    settings = settings_of(app)
    bob = register(app, "bob@example.com")

    logged_out = actor(app)
    login = logged_out.post("/api/auth/login", json={"email": job.owner.email, "password": "lantern-quietly-47"})
    ended_token = login.json()["access_token"]
    assert logged_out.post("/api/auth/logout", headers={"X-CSRF-Token": login.json()["csrf_token"]}).status_code == 204
    ended_cookie_client = actor(app, cookies={"deepscreen_session": ended_token})

    key = job.owner.client.post("/api/account/keys", json={"name": "ci"}, headers=job.owner.bearer).json()
    assert job.owner.client.delete(f"/api/account/keys/{key['id']}", headers=job.owner.bearer).status_code == 204

    with app.state.database.session() as session:
        from core.accounts.models import AuthSession

        live = session.query(AuthSession).filter_by(revoked_at=None).first()
        user_id, session_id = live.user_id, live.id
    expired = issue_access_token(
        settings.SECRET_KEY, user_id=user_id, session_id=session_id, now=utcnow() - timedelta(hours=3), ttl_seconds=60
    )
    foreign = issue_access_token(
        "another-deployment-secret-" + "y" * 32, user_id=user_id, session_id=session_id, now=utcnow(), ttl_seconds=600
    )
    return {
        "second user (Bearer)": (bob.client, bob.bearer, 404),
        "second user (cookie)": (bob.client, {"X-CSRF-Token": bob.csrf_token}, 404),
        "anonymous": (actor(app), {}, 404),
        "wrong job token": (actor(app), {"X-Job-Token": job.token[:-4] + "AAAA"}, 404),
        "another job's token": (actor(app), {"X-Job-Token": upload(actor(app), color=(1, 1, 1)).json()["access_token"]},
                                404),
        "expired access token": (actor(app), {"Authorization": f"Bearer {expired}"}, 401),
        "token signed with another secret": (actor(app), {"Authorization": f"Bearer {foreign}"}, 401),
        "logged-out session (Bearer)": (actor(app), {"Authorization": f"Bearer {ended_token}"}, 401),
        "logged-out session (cookie)": (ended_cookie_client, {}, 404),
        "revoked API key": (actor(app), {"Authorization": f"Bearer {key['key']}"}, 401),
        "malformed Authorization": (actor(app), {"Authorization": "Basic YWxpY2U6eA=="}, 401),
    }


def test_every_job_route_gives_intruders_nothing(app: FastAPI, owned_job: OwnedJob) -> None:
    for who, (client, headers, expected) in intruders(app, owned_job).items():
        for method, route in JOB_ROUTES:
            response = call(client, method, route, owned_job.id, headers=headers)
            assert response.status_code == expected, (who, method, route, response.text)  # type: ignore[attr-defined]
            body = response.text  # type: ignore[attr-defined]
            assert owned_job.id not in body or expected == 404 and '"job_id"' in body, (who, route)
            assert SECRET not in body, (who, route)
            assert "succeeded" not in body, (who, route)
        listing = client.get("/api/jobs", headers=headers)
        assert listing.status_code in (200, 401), who
        assert owned_job.id not in listing.text, who
    # DELETE by everyone above changed nothing.
    assert call(owned_job.owner.client, "GET", "/api/jobs/{id}", owned_job.id).status_code == 200  # type: ignore[attr-defined]


def test_the_owner_and_the_token_holder_get_the_job_on_every_route(app: FastAPI, owned_job: OwnedJob) -> None:
    key = owned_job.owner.client.post("/api/account/keys", json={}, headers=owned_job.owner.bearer).json()["key"]
    by_key = {"Authorization": f"Bearer {key}"}
    holders: dict[str, Callable[[str, str], object]] = {
        "owner (cookie)": lambda m, r: call(owned_job.owner.client, m, r, owned_job.id),
        "owner (Bearer)": lambda m, r: call(actor(app), m, r, owned_job.id, headers=owned_job.owner.bearer),
        "owner (API key)": lambda m, r: call(actor(app), m, r, owned_job.id, headers=by_key),
        "token (header)": lambda m, r: call(actor(app), m, r, owned_job.id, headers={"X-Job-Token": owned_job.token}),
        "token (query)": lambda m, r: call(actor(app), m, r, owned_job.id, params={"token": owned_job.token}),
    }
    for who, request in holders.items():
        for method, route in JOB_ROUTES[:3]:
            response = request(method, route)
            assert response.status_code == 200, (who, route, response.text)  # type: ignore[attr-defined]
            assert ("succeeded" if route.endswith("events") else SECRET) in response.text, (who, route)  # type: ignore[attr-defined]
    # And the owner's history lists it, for a script as for the browser.
    listed = actor(app).get("/api/jobs", headers={"Authorization": f"Bearer {key}"}).json()
    assert [item["id"] for item in listed["items"]] == [owned_job.id]


def test_cookie_changes_need_the_csrf_token(app: FastAPI, owned_job: OwnedJob) -> None:
    owner = owned_job.owner
    forged = owner.client.delete(f"/api/jobs/{owned_job.id}")
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "csrf_failed"
    assert owner.client.post("/api/account/keys", json={}).status_code == 403
    assert upload(owner.client).status_code == 403
    assert owner.client.post("/api/account/keys", json={}, headers={"X-CSRF-Token": "x" * 43}).status_code == 403
    # The other user's CSRF token does not fit this session.
    bob = register(app, "bob@example.com")
    assert owner.client.post("/api/account/keys", json={}, headers={"X-CSRF-Token": bob.csrf_token}).status_code == 403
    # With the token, or with a Bearer credential (not sent by browsers on their own), it works.
    csrf = {"X-CSRF-Token": owner.csrf_token}
    assert owner.client.post("/api/account/keys", json={}, headers=csrf).status_code == 201
    assert actor(app).post("/api/account/keys", json={}, headers=owner.bearer).status_code == 201
    assert owner.client.delete(f"/api/jobs/{owned_job.id}", headers=csrf).status_code == 204


def test_anonymous_list_shows_only_jobs_whose_tokens_are_sent(app: FastAPI) -> None:
    mine = upload(actor(app), color=(5, 5, 5)).json()
    theirs = upload(actor(app), color=(6, 6, 6)).json()

    assert actor(app).get("/api/jobs").json() == {"items": [], "total": 0, "limit": 20, "offset": 0}
    listed = actor(app).get("/api/jobs", headers={"X-Job-Token": mine["access_token"]}).json()
    assert [item["id"] for item in listed["items"]] == [mine["id"]]
    both = actor(app).get("/api/jobs", headers={"X-Job-Token": f"{mine['access_token']},{theirs['access_token']}"})
    assert both.json()["total"] == 2


def test_a_users_private_upload_is_never_reused_for_someone_else(app: FastAPI, owned_job: OwnedJob) -> None:
    beat = write_beat(settings_of(app))  # a live worker serves the model the job ran with
    with app.state.database.session() as session:
        session.get(Job, owned_job.id).model_sha256 = beat.model_sha256
    same_bytes = upload(actor(app))  # the owner's upload used the default color
    owner_again = upload(owned_job.owner.client, headers={"X-CSRF-Token": owned_job.owner.csrf_token})

    assert owner_again.json()["reused_from"] == owned_job.id, "the owner's own result is reused"
    assert same_bytes.status_code == 202
    assert same_bytes.json()["reused_from"] is None
    assert same_bytes.json()["state"] == "queued"


def test_logout_ends_the_session_at_once(app: FastAPI) -> None:
    alice = register(app, "alice@example.com")
    cookie = alice.client.cookies.get("deepscreen_session")
    assert alice.client.get("/api/auth/me").status_code == 200

    assert alice.client.post("/api/auth/logout", headers={"X-CSRF-Token": alice.csrf_token}).status_code == 204

    assert actor(app).get("/api/auth/me", headers=alice.bearer).status_code == 401
    assert actor(app, cookies={"deepscreen_session": cookie}).get("/api/auth/me").status_code == 401
    assert alice.client.get("/api/auth/me").status_code == 401


@pytest.mark.parametrize("mode", ["required"])
def test_required_mode_refuses_anonymous_callers_even_with_a_token(
    accounts_env: dict[str, str], mode: str
) -> None:
    from backend.main import create_app
    from tests.conftest import make_settings

    application = create_app(make_settings({**accounts_env, "AUTH_MODE": mode}))
    with TestClient(application):
        alice = register(application, "alice@example.com")
        created = upload(actor(application), headers=alice.bearer).json()
        assert created["access_token"] is None
        anonymous_upload = upload(actor(application))
        assert anonymous_upload.status_code == 401
        for method, route in JOB_ROUTES[:1]:
            assert call(actor(application), method, route, created["id"]).status_code == 401  # type: ignore[attr-defined]
        assert actor(application).get("/api/jobs").status_code == 401
        assert call(actor(application), "GET", "/api/jobs/{id}", created["id"], headers=alice.bearer).status_code == 200  # type: ignore[attr-defined]


def test_off_mode_has_no_accounts_and_needs_the_token(env: dict[str, str]) -> None:
    from backend.main import create_app
    from tests.conftest import make_settings

    application = create_app(make_settings({**env, "AUTH_MODE": "off"}))
    with TestClient(application):
        refused = actor(application).post("/api/auth/register", json={"email": "a@example.com", "password": "x" * 12})
        assert refused.status_code == 404
        assert refused.json()["error"]["code"] == "accounts_disabled"
        created = upload(actor(application)).json()
        assert call(actor(application), "GET", "/api/jobs/{id}", created["id"]).status_code == 404  # type: ignore[attr-defined]
        with_token = call(actor(application), "GET", "/api/jobs/{id}", created["id"],
                          headers={"X-Job-Token": created["access_token"]})
        assert with_token.status_code == 200  # type: ignore[attr-defined]
        with application.state.database.session() as session:
            stored = session.get(Job, created["id"]).access_token_hash
        assert stored != created["access_token"]
        assert len(stored) == 64


def test_every_route_with_a_job_id_checks_access() -> None:
    """A guard for routes added later: anything under /api/jobs/{job_id} must depend on get_visible_job."""
    from fastapi.routing import APIRoute

    from backend.accounts.deps import get_visible_job
    from backend.jobs.routes import router as jobs_router
    from backend.live.routes import router as live_router
    from backend.shares.routes import router as shares_router

    def calls(dependant: object) -> set[object]:
        found = {getattr(dependant, "call", None)}
        for sub in getattr(dependant, "dependencies", []):
            found |= calls(sub)
        return found

    routes = [*jobs_router.routes, *live_router.routes, *shares_router.routes]
    job_routes = [r for r in routes if isinstance(r, APIRoute) and "{job_id}" in r.path]
    assert len(job_routes) >= 9
    for route in job_routes:
        assert get_visible_job in calls(route.dependant), f"{route.path} does not check job access"
