"""CSRF on every state-changing request a browser can send: each route of the web pages, found in the URL map.

A forged request (no token, a made-up token, or a real token of another session) is refused
with 400 before the view runs, and changes nothing. The JSON API takes no cookies at all,
so a signed-in browser cannot be made to call it.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from service.persistence import tables as t

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
ALL_ROLES_USER = "sue"  # supervisor and case manager: reaches the most views; CSRF is checked before any role
_PARAMETER = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")
AUDITED_TABLES = ("case_record", "human_task", "case_event", "note", "incident", "app_user", "api_token",
                  "process_version", "process_draft", "draft_file", "case_flag", "timer")


def _example_value(parameter: re.Match) -> str:
    converter, arguments, _ = parameter.groups()
    if converter == "int":
        return "1"
    if converter == "any":
        return arguments.split(",")[0].strip().strip("'\"")
    return "acute_hospital"


def _unsafe_web_routes(app) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") or rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) & UNSAFE):
            path = _PARAMETER.sub(_example_value, rule.rule)
            routes.append((method, path))
    return routes


def _counts(app) -> dict[str, int]:
    with app.extensions["casework"].uow.engine.connect() as connection:
        return {name: connection.execute(select(func.count()).select_from(getattr(t, name))).scalar()
                for name in AUDITED_TABLES}


@pytest.fixture
def seeded(app, seed):
    case_id = seed.case("Ada Brown", "MRN-1")
    seed.task(case_id, "Admission review")
    return case_id


def test_the_web_pages_have_state_changing_routes_to_check(app):
    routes = _unsafe_web_routes(app)
    # The sign-in, sign-out, task, case, repair, designer and migration forms at least.
    assert len(routes) >= 20, routes
    assert ("POST", "/signin") in routes and ("POST", "/signout") in routes


@pytest.mark.parametrize("forgery", ["no token", "made-up token", "another session's token", "token in a header"])
def test_every_state_changing_web_route_refuses_a_forged_request_and_changes_nothing(app, visitor, seeded, forgery):
    victim = visitor(ALL_ROLES_USER)
    attacker = visitor("carla")
    other_token = attacker.token
    assert other_token and victim.token and other_token != victim.token
    before = _counts(app)
    refused = []
    for method, path in _unsafe_web_routes(app):
        kwargs: dict = {}
        if forgery == "made-up token":
            kwargs["data"] = {"csrf_token": "IjAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OSI.forged.signature"}
        elif forgery == "another session's token":
            kwargs["data"] = {"csrf_token": other_token}
        elif forgery == "token in a header":
            kwargs["headers"] = {"X-CSRFToken": other_token, "Content-Type": "application/json"}
            kwargs["data"] = "{}"
        response = victim.client.open(path, method=method, **kwargs)
        body = response.get_data(as_text=True)
        if response.status_code != 400 or "security token" not in body:
            refused.append((method, path, response.status_code))
    assert refused == [], f"accepted or answered without the CSRF refusal ({forgery}): {refused}"
    assert _counts(app) == before
    # The victim's session is untouched: still signed in.
    assert victim.get("/inbox").status_code == 200


def test_a_real_token_of_the_same_session_is_accepted(app, visitor, seeded):
    browser = visitor("carla")
    before = _counts(app)
    response = browser.post(f"/cases/{seeded}/notes", {"text": "Called the family.", "back": f"/cases/{seeded}"})
    assert response.status_code == 303
    assert _counts(app)["note"] == before["note"] + 1


def test_the_api_ignores_the_session_cookie(app, visitor, seeded):
    browser = visitor("sue")
    before = _counts(app)
    response = browser.client.post(f"/api/v1/cases/{seeded}/notes", json={"text": "Forged through the API"})
    assert response.status_code == 401
    assert browser.client.get(f"/api/v1/cases/{seeded}").status_code == 401
    assert _counts(app) == before
