"""The served OpenAPI describes the real answers: typed results, closed code sets, the error shape on
every route and the three ways to authenticate."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from fastapi.testclient import TestClient

from core.errors import ApiErrorCode
from core.settings import REPO_ROOT
from ml.contracts import Aggregation, ArtifactKind, ErrorCode, Label, LowConfidenceReason
from tests.backend.factories import make_job, make_result
from tests.conftest import grant_job_token
from tests.openapi import schema_errors


def served(client: TestClient) -> dict:
    response = client.get(client.app.openapi_url)  # type: ignore[attr-defined]
    assert response.status_code == 200
    return response.json()


def test_job_result_is_typed_with_closed_enums(client: TestClient) -> None:
    schemas = served(client)["components"]["schemas"]

    result = schemas["JobPublic"]["properties"]["result"]
    assert {"$ref": "#/components/schemas/AnalysisResult"} in result["anyOf"]
    for enum in (Label, LowConfidenceReason, ArtifactKind, Aggregation, ErrorCode, ApiErrorCode):
        assert schemas[enum.__name__]["enum"] == [member.value for member in enum], enum.__name__
    assert schemas["JobError"]["properties"]["code"]["$ref"] == "#/components/schemas/ErrorCode"
    assert schemas["ErrorDetail"]["properties"]["code"]["$ref"] == "#/components/schemas/ApiErrorCode"
    assert "box" in schemas["Face"]["properties"]
    assert {"Track", "OperatingPoint", "Artifact"} <= set(schemas)
    assert "HTTPValidationError" not in schemas, "FastAPI's 422 shape is not what this API answers"


def test_every_error_answer_of_every_route_is_the_error_response(client: TestClient) -> None:
    document = served(client)
    missing = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "default" in responses, f"{method} {path}"
            for status, response in responses.items():
                if status == "default" or status[0] in "45":
                    if (path, status) == ("/api/health/ready", "503"):
                        continue  # a readiness probe answers its checks, by design
                    if "#/components/schemas/ErrorResponse" not in json.dumps(response):
                        missing.append(f"{method.upper()} {path} {status}")
    assert missing == []


def test_security_schemes_name_the_three_credentials(client: TestClient) -> None:
    document = served(client)
    schemes = document["components"]["securitySchemes"]

    assert schemes["JobToken"] == {**schemes["JobToken"], "type": "apiKey", "in": "header", "name": "X-Job-Token"}
    assert schemes["JobTokenQuery"] == {**schemes["JobTokenQuery"], "type": "apiKey", "in": "query", "name": "token"}
    assert schemes["Bearer"] == {**schemes["Bearer"], "type": "http", "scheme": "bearer"}
    security = document["paths"]["/api/jobs/{job_id}"]["get"]["security"]
    assert {"JobToken", "JobTokenQuery", "Bearer"} <= {name for requirement in security for name in requirement}


def test_job_tokens_work_as_the_schemes_say(settings) -> None:  # noqa: ANN001
    from tests.conftest import api_client

    with api_client(settings) as owner:
        job = grant_job_token(owner, make_job())
        with owner.app.state.database.session() as session:  # type: ignore[attr-defined]
            session.add(job)
        token = owner.auth.tokens[-1]  # type: ignore[attr-defined]
        owner.auth.tokens.clear()  # type: ignore[attr-defined]
        anonymous = owner.get(f"/api/jobs/{job.id}")
        by_header = owner.get(f"/api/jobs/{job.id}", headers={"X-Job-Token": token})
        by_query = owner.get(f"/api/jobs/{job.id}", params={"token": token})

    assert anonymous.status_code == 404
    assert by_header.status_code == 200
    assert by_query.status_code == 200


def test_a_stored_result_validates_against_the_served_schema(client: TestClient) -> None:
    job = grant_job_token(client, make_job(state="succeeded", result=make_result().model_dump(mode="json")))
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        session.add(job)

    body = client.get(f"/api/jobs/{job.id}").json()
    missing = client.get("/api/jobs/nope").json()

    assert schema_errors(served(client), "JobPublic", body) == []
    assert schema_errors(served(client), "ErrorResponse", missing) == []
    assert schema_errors(served(client), "JobPublic", {**body, "result": {"label": "uncertain"}}) != [], (
        "the check can fail"
    )


def test_a_result_of_an_older_schema_is_served_as_none_not_500(client: TestClient) -> None:
    old = {**make_result().model_dump(mode="json"), "schema_version": "1.0", "label": "uncertain"}
    job = grant_job_token(client, make_job(state="succeeded", result=old))
    with client.app.state.database.session() as session:  # type: ignore[attr-defined]
        session.add(job)

    response = client.get(f"/api/jobs/{job.id}")

    assert response.status_code == 200
    assert response.json()["result"] is None


def test_every_job_error_code_is_an_api_error_code() -> None:
    assert {code.value for code in ErrorCode} <= {code.value for code in ApiErrorCode}


def test_every_error_code_written_in_the_backend_is_an_api_error_code() -> None:
    """A `code="..."` literal that is not in ApiErrorCode would be a 500 when raised; find it here."""
    known = {code.value for code in ApiErrorCode}
    unknown = []
    for path in sorted(Path(REPO_ROOT, "backend").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values = []
            if isinstance(node, ast.keyword) and node.arg == "code":
                values.append(node.value)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "code" for t in node.targets):
                values.append(node.value)
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value not in known:
                    unknown.append(f"{path.relative_to(REPO_ROOT)}:{value.lineno} {value.value}")
    assert unknown == []
