"""API fuzzing, CI's short mode: Schemathesis (every phase, stateful included; every check) against the real app
served on 127.0.0.1 over a real SQLite database finds no server error and no answer its OpenAPI document does not
describe. `trialstack reliability fuzz --examples N` is the long mode.

Beside it: the harness itself finds an undeclared answer (so a clean run means something), and the document
declares what the fuzzer relies on (problem+json errors, every path parameter, a complete Allow header)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from tests.conftest import REPO_ROOT
from tests.integration.identity.support import STUDY, add_user, bearer, client_class, token_for
from trialstack.api.app import create_app
from trialstack.api.problems import PROBLEM_JSON
from trialstack.bootstrap import Platform
from trialstack.identity.policy import Role
from trialstack.reliability.fuzz import FuzzTarget, run_fuzz, run_schemathesis, schemathesis_config
from trialstack.reliability.serving import served

DEMO = REPO_ROOT / "studies" / "demo" / "study.yaml"
TestClient = client_class()


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(tmp_path: Path) -> None:
    report = run_fuzz(f"sqlite:///{tmp_path / 'fuzz.db'}", DEMO, examples=5, seed=20261207)
    assert report.failures == [] and report.errors == [], report.summary() + "\n" + report.output[-6000:]
    assert report.exit_code == 0, report.output[-6000:]
    assert report.operations_tested == report.operations_total >= 30, report.summary()
    assert report.phases == {
        "examples": "success",
        "coverage": "success",
        "fuzzing": "success",
        "stateful": "success",
    }, report.summary()
    assert report.cases > 10 * report.operations_total, report.summary()


def test_the_harness_reports_an_answer_the_document_does_not_declare(tmp_path: Path) -> None:
    """A clean run above means something only if the same harness fails an app that breaks its document."""
    app = FastAPI()

    @app.get("/teapot", responses={200: {"description": "never sent"}})
    def teapot() -> JSONResponse:
        return JSONResponse({"detail": "short and stout"}, status_code=418)

    target = FuzzTarget("S", "not-a-real-token", [], [], [], [])
    with served(app) as url:
        report = run_schemathesis(url, schemathesis_config(target), target.token, examples=2, seed=1)
    codes = {failure["code"] for failure in report.failures}
    assert "ST103" in codes, report.summary()  # Undocumented status code
    assert report.exit_code != 0


@pytest.fixture
def api(loaded: Platform) -> tuple[Any, dict[str, str]]:
    add_user(loaded, "admin", Role.ADMIN)
    return TestClient(create_app(loaded)), bearer(token_for(loaded, "admin"))


def test_every_api_operation_declares_its_problems_as_problem_json(api: tuple[Any, dict[str, str]]) -> None:
    client, _ = api
    document = client.get("/openapi.json").json()
    assert "Problem" in document["components"]["schemas"]
    operations = [(m, p, op) for p, item in document["paths"].items() for m, op in item.items()]
    assert len(operations) >= 30
    for method, path, operation in operations:
        if not path.startswith("/api/v1"):
            continue
        declared = operation["responses"]
        public = (method, path) == ("post", "/api/v1/session")
        for status in ("401", "422") if public else ("401", "403", "404", "422"):
            content = declared.get(status, {}).get("content", {})
            assert content.get(PROBLEM_JSON, {}).get("schema") == {"$ref": "#/components/schemas/Problem"}, (
                method,
                path,
                status,
            )
        assert "application/json" not in declared.get("422", {}).get("content", {}), (method, path)
        for name in {segment[1:-1] for segment in path.split("/") if segment.startswith("{")}:
            declared_params = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert name in declared_params, (method, path, name)


def test_a_refused_method_names_every_method_of_the_path_in_allow(api: tuple[Any, dict[str, str]]) -> None:
    client, headers = api
    response = client.patch(f"/api/v1/studies/{STUDY}/subjects/0101-001/forms/SCREENING.VS", headers=headers)
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "PUT"}
    session = client.put("/api/v1/session", headers=headers)
    assert {m.strip() for m in session.headers["allow"].split(",")} == {"POST", "DELETE"}


def test_study_access_reads_its_declared_path_parameter(api: tuple[Any, dict[str, str]]) -> None:
    client, headers = api
    answer = client.get(f"/api/v1/studies/{STUDY}/access", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["study_id"] == STUDY
    assert any(user["username"] == "admin" for user in answer.json()["users"])


def test_positions_beyond_64_bits_or_in_other_digits_are_refused_not_server_errors(
    loaded: Platform, api: tuple[Any, dict[str, str]]
) -> None:
    """What the long fuzzing run found: `after` past 2^63 reached the database (500), and so would a huge or a
    non-ASCII-digit Last-Event-ID; If-Match: "²" passed isdigit() and failed int()."""
    client, admin = api
    events = f"/api/v1/studies/{STUDY}/events"
    too_far = client.get(events, params={"after": 2**63}, headers=admin)
    assert too_far.status_code == 422 and too_far.json()["field"] == "after", too_far.text
    assert client.get(events, params={"after": 2**63 - 1}, headers=admin).json()["events"] == []
    for last_id in (b"99999999999999999999999", "²".encode()):
        stream = client.get(f"{events}/stream", params={"max_seconds": 0}, headers={**admin, "Last-Event-ID": last_id})
        assert stream.status_code == 200 and "event: StudyVersionPublished" in stream.text, last_id
    add_user(loaded, "coordinator", Role.STUDY_COORDINATOR, frozenset({"0101"}))
    coordinator = bearer(token_for(loaded, "coordinator"))
    screened = client.post(
        f"/api/v1/studies/{STUDY}/subjects", json={"site_id": "0101", "screened_on": "2026-01-05"}, headers=coordinator
    )
    assert screened.status_code == 201, screened.text
    subject = screened.json()["subject_id"]
    pinned = client.put(
        f"/api/v1/studies/{STUDY}/subjects/{subject}/visits/SCREENING",
        json={"visit_date": "2026-01-05"},
        headers={**coordinator, "If-Match": '"²"'.encode()},
    )
    assert pinned.status_code == 422 and pinned.json()["field"] == "If-Match", pinned.text
