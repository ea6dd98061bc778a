"""Fuzz every operation of the JSON API from its own OpenAPI document: whatever is sent, never a 5xx.

Schemathesis generates valid and invalid requests for each operation of the document the
app serves at /api/v1/openapi.json and sends them to the app through WSGI (no network), on
a throwaway database holding the deployed bpmn/ diagrams and the demo cases and tasks:
- as a supervisor who sees every setting, each response must be no server error, carry a
  status code and a content type the document declares, and match the schema declared
  for that status: every operation on SQLite, and those that write on PostgreSQL too;
- without a token, or with a wrong one, every operation but the document itself is a 401.

The schemas are loaded when the module is collected, from the same `build_openapi` the app
serves (the first test checks they are equal), because schemathesis' fixture-based loader
(`schemathesis.pytest.from_fixture`) fails on pytest 9.2: it sets `Function._nodeid`.
Examples are derived from a fixed seed (derandomize), so a run repeats the last one.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service import demo
from service.api import bp
from service.api.docs import build_openapi
from service.cli import deploy_folder
from tests.conftest import _fresh_schema
from tests.e2e.conftest import REPO, make_app
from workflows import accounts

DOCUMENT_PATH = f"{bp.url_prefix}/openapi.json"
DOCUMENT = build_openapi(bp.url_prefix)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# What the demo data holds, so that generated ids and names often reach a real case, task,
# incident, version or element instead of stopping at a 404.
KNOWN_VALUES = {
    "ids": list(range(1, 21)),
    "task_ids": list(range(1, 81)),  # the demo's first tasks are done: open ones reach past 60
    "processes": ["acute_stay", "irf_stay", "workers_comp_case"],
    "elements": ["admission_review", "discharge_planning", "payer_authorization", "wait_for_next_review"],
    "files": ["acute_stay.bpmn", "case_management.bpmn", "forms/admission.schema.json"],
    "users": ["carla", "cole", "sue", "nick"],
    # Operations run in the document's order, and cancelling comes before working tasks:
    # cancelling only these few cases leaves the others' tasks to claim, save and complete.
    "spare_cases": [15, 16, 17, 18],
}
BINDINGS = {
    "case_id": "ids", "task_id": "task_ids", "incident_id": "ids", "version_id": "ids",
    "process_id": "processes", "element_id": "elements", "path": "files", "assignee": "users",
}
# The app is built once per database for every operation, so no function-scoped fixture is
# shared between examples; the other health checks would only say generation is slow.
FUZZ_SETTINGS = settings(max_examples=15, derandomize=True, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                                HealthCheck.data_too_large])

supervisor_schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict({
    # The token is sent by the test; generated Authorization headers would only be refused.
    "generation": {"with-security-parameters": False, "deterministic": True},
    "dictionaries": {name: {"values": values} for name, values in KNOWN_VALUES.items()},
    "parameters": {name: {"dictionary": values, "probability": 0.7} for name, values in BINDINGS.items()},
    "operations": [{"include-path": f"{bp.url_prefix}/cases/{{case_id}}/cancel",
                    "parameters": {"case_id": {"dictionary": "spare_cases", "probability": 0.7}}}],
}))
# Valid requests only (an invalid path may match no route at all, a 404 before any token is
# looked at), a few per operation: what is checked is that the token is asked for first.
anonymous_schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict({
    "generation": {"with-security-parameters": False, "deterministic": True, "mode": "positive"},
    "phases": {"coverage": {"enabled": False}, "examples": {"enabled": False}},
})).exclude(path=DOCUMENT_PATH)
WRONG_AUTHORIZATIONS = ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Bearer "},
                        {"Authorization": "Basic c3VlOmRlbW8="}, {"Authorization": "Bearer \u00e9\u0000"})


@dataclass
class FuzzedApi:
    app: Flask
    headers: dict[str, str]


def fuzzed_api(database_url: str, folder):
    """The app on an empty database with bpmn/ deployed and the demo data, and a supervisor's token."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        app = make_app(database_url, folder)
        deploy_folder(app, REPO / "bpmn", only_new=True)
        services = app.extensions["casework"]
        demo.load_demo(services, app.config["BPMN_PATH"])
        # Holding every lane's role and the designer's too, so that claims, completions and
        # deployments are fuzzed past the role checks into the engine.
        roles = [role for role in accounts.KNOWN_ROLES if role != "system"]
        _, token = accounts.add_user(services, username="fuzz-supervisor", settings=None, roles=roles)
        yield FuzzedApi(app, {"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    yield from fuzzed_api(f"sqlite:///{folder / 'casework.db'}", folder)


@pytest.fixture(scope="module")
def postgres_api(postgres_url, tmp_path_factory):
    for database_url in _fresh_schema(postgres_url):
        yield from fuzzed_api(database_url, tmp_path_factory.mktemp("fuzz"))


def test_the_fuzzed_document_is_the_one_the_app_serves_and_the_demo_data_is_there(sqlite_api):
    client = sqlite_api.app.test_client()
    served = client.get(DOCUMENT_PATH)
    assert served.status_code == 200
    assert served.json == DOCUMENT
    cases = client.get("/api/v1/cases", query_string={"limit": 200}, headers=sqlite_api.headers).json["items"]
    assert {case["process_id"] for case in cases} == set(KNOWN_VALUES["processes"])
    assert {case["id"] for case in cases} >= set(range(1, 11))


@supervisor_schema.parametrize()
@FUZZ_SETTINGS
def test_no_request_of_a_supervisor_makes_the_api_fail(case, sqlite_api):
    case.call_and_validate(app=sqlite_api.app, headers=sqlite_api.headers, checks=CHECKS)


# What PostgreSQL refuses and SQLite takes (NUL characters, text past its column's length,
# NaN) arrives with what a request writes; reading is fuzzed on SQLite only, to stay short.
@pytest.mark.postgres
@supervisor_schema.include(method=["POST", "PUT"]).parametrize()
@FUZZ_SETTINGS
def test_no_write_of_a_supervisor_makes_the_api_fail_on_postgresql(case, postgres_api):
    case.call_and_validate(app=postgres_api.app, headers=postgres_api.headers, checks=CHECKS)


@anonymous_schema.parametrize()
@settings(FUZZ_SETTINGS, max_examples=3)
def test_every_operation_asks_for_a_valid_token_first(case, sqlite_api):
    for headers in WRONG_AUTHORIZATIONS:
        response = case.call(app=sqlite_api.app, headers=headers)
        case.validate_response(response, checks=CHECKS)
        assert response.status_code == 401, (headers, response.status_code, response.text)
        assert response.json()["error"]["status"] == 401
        assert response.headers["www-authenticate"][0].startswith("Bearer")  # schemathesis lower-cases names
