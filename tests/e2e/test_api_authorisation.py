"""Who may use what: every route classified and guarded, and the API shows nothing of a setting the user does not cover.

The inventory below must name every route of the app: a new route fails
`test_every_route_is_classified` until someone decides who may use it. Each route must
refuse anonymous requests (the web pages redirect to sign-in, the API and metrics answer
401), and a route kept to some roles must refuse a signed-in user without them.
"""
from __future__ import annotations

import re

import pytest

from service.web.sessions import session_for
from tests.web.test_authorisation import (
    ACUTE_MRN,
    ACUTE_NAME,
    ACUTE_PROCESS,
    COMP_PROCESS,
    MISSING,
    acute_state,
    open_two_units,
)
from workflows import accounts

PUBLIC, SIGNED_IN = "public", "any signed-in user"
SUPERVISORS, DESIGN_READERS = ("supervisor", "admin"), ("designer", "admin", "supervisor")
DEPLOYERS, METRICS, ADMINS = ("designer", "admin"), ("admin", "system"), ("admin",)
ROUTES = {
    "static": PUBLIC, "web.signin": PUBLIC, "api.openapi": PUBLIC,
    **dict.fromkeys((
        "web.inbox", "web.signout", "web.bpmn_js_asset", "web.case_page", "web.add_note", "web.add_task",
        "web.case_diagram_xml", "web.case_diagram_marks", "web.task_page", "web.submit_task", "web.claim",
        "web.unclaim", "api.me", "api.list_process_versions", "api.start_case", "api.list_cases", "api.get_case",
        "api.add_note", "api.add_task", "api.list_tasks", "api.get_task", "api.save_draft", "api.claim_task",
        "api.unclaim_task", "api.complete_task", "api.post_message"), SIGNED_IN),
    **dict.fromkeys((
        "web.case_action", "web.retry_incident", "web.close_incident", "web.move_token", "web.assign", "web.stuck",
        "web.stuck_csv", "web.reassign", "web.kpis", "web.kpis_csv", "web.processes", "web.process_page",
        "web.process_diagram", "web.process_heat", "web.element_page", "web.process_migrate", "web.migrate_cases",
        "api.cancel_case", "api.suspend_case", "api.resume_case", "api.assign_task", "api.list_tokens",
        "api.move_token", "api.retry_incident", "api.close_incident", "api.list_stuck_cases", "api.kpi_report",
        "api.process_heatmap", "api.element_waiting_cases", "api.migration_preview", "api.migrate_cases"), SUPERVISORS),
    **dict.fromkeys(("web.designer", "web.designer_set", "web.designer_draft", "web.designer_draft_file",
                     "web.designer_validate", "web.designer_tests", "web.designer_version_file",
                     "web.designer_version_zip", "api.process_version_file"), DESIGN_READERS),
    **dict.fromkeys(("web.process_diff", "api.version_diff"), ("designer", "supervisor", "admin")),
    **dict.fromkeys(("web.designer_save_file", "web.designer_upload", "web.designer_deploy", "web.designer_discard",
                     "api.deploy"), DEPLOYERS),
    **dict.fromkeys(("web.admin_users", "web.admin_add_user", "web.admin_user", "web.admin_update_user",
                     "web.admin_set_active", "web.admin_set_password", "web.admin_unlock", "web.admin_issue_token",
                     "web.admin_revoke_token"), ADMINS),
    "metrics.metrics": METRICS,
}
SAMPLES = {"case_id": 1, "task_id": 1, "incident_id": 1, "version_id": 1, "token_id": 1, "process_id": "p",
           "element_id": "e", "set_name": "s", "path": "x.bpmn", "name": "bpmn-modeler.production.min.js",
           "filename": "casework.css", "username": "carla", "action": "suspend", "change": "deactivate"}
# Bodies the API reads before it checks who asks: a refusal must be for the role, not for the body.
API_BODIES = {
    "api.deploy": {"name": "s", "files": {"x.bpmn": "<x/>"}}, "api.cancel_case": {"reason": "x"},
    "api.suspend_case": {"reason": "x"}, "api.resume_case": {}, "api.assign_task": {"assignee": "carla"},
    "api.move_token": {"task_ref": "x", "target": "y", "reason": "z"}, "api.retry_incident": {},
    "api.close_incident": {"reason": "x"}, "api.migrate_cases": {"case_ids": [1], "to_version": 1},
}
WEB_FORM = {"reason": "x", "to_version": "1", "case_id": "1", "task": "1", "assignee": "carla", "note": "x",
            "move": "a>b", "username": "x", "roles": "case_manager"}


def routes(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, a URL of it) for every route and method of the app."""
    found = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            missing = sorted(set(rule.arguments) - set(SAMPLES))
            assert not missing, f"{rule.rule}: add a sample value for {missing} to SAMPLES"
            url = app.url_for(rule.endpoint, **{name: SAMPLES[name] for name in rule.arguments})
            found += [(rule.endpoint, method, url) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def signed_in(app, username: str | None):
    client = app.test_client()
    if username is not None:
        services = app.extensions["casework"]
        with client.session_transaction() as session:
            session.update(session_for(accounts.active_user(services, username=username), services.clock.now()))
    page = client.get("/signin" if username is None else "/inbox").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client, {"X-CSRFToken": token}


class TestRouteInventory:
    def test_every_route_is_classified_and_every_classified_route_exists(self, app):
        endpoints = {endpoint for endpoint, _, _ in routes(app)}
        assert sorted(endpoints - set(ROUTES)) == [], "classify these routes in ROUTES: who may use them?"
        assert sorted(set(ROUTES) - endpoints) == [], "these routes are gone: remove them from ROUTES"

    def test_anonymous_requests_are_refused_everywhere_but_the_public_routes(self, app):
        client, csrf = signed_in(app, None)
        for endpoint, method, url in routes(app):
            response = client.open(url, method=method, headers=csrf, data={})
            where = f"{method} {url} ({endpoint})"
            if ROUTES[endpoint] == PUBLIC:
                assert response.status_code in (200, 405), where
            elif endpoint.startswith("web."):
                assert response.status_code == 303 and response.headers["Location"].startswith("/signin"), where
            else:
                assert response.status_code == 401 and "WWW-Authenticate" in response.headers, where

    def test_a_route_kept_to_some_roles_refuses_a_signed_in_user_without_them(self, app, users):
        client, csrf = signed_in(app, "pat")  # a physician advisor: none of the roles any restricted route needs
        for endpoint, method, url in routes(app):
            if ROUTES[endpoint] in (PUBLIC, SIGNED_IN):
                continue
            where = f"{method} {url} ({endpoint})"
            if not endpoint.startswith("web."):
                body = API_BODIES.get(endpoint) if method != "GET" else None
                response = client.open(url, method=method, json=body, headers={"Authorization": f"Bearer {users['pat']}"})
                assert response.status_code in ((401, 403) if endpoint == "metrics.metrics" else (403,)), where
                continue
            headers = {**csrf, "X-Draft-Revision": "0"}
            response = client.open(url, method=method, headers=headers, data=None if method == "GET" else WEB_FORM)
            if response.status_code == 303:  # a refused form says why on the page it returns to
                page = client.get("/inbox").get_data(as_text=True)
                assert re.search(r'class="flash flash-error"[^>]*>Only ', page), where
            else:
                assert response.status_code == 403, where


@pytest.fixture
def units(app, users):
    """The acute case is sue's, the workers' comp one wendy's; wendy covers workers' comp only."""
    return open_two_units(app.extensions["casework"], acute_worker="sue", comp_worker="wendy")


def same_as_missing(hidden, missing, real_id) -> None:
    assert hidden.status_code == missing.status_code == 404, (hidden.json, missing.json)
    assert hidden.json == _with_id(missing.json, str(MISSING), str(real_id))
    assert "does not exist" in hidden.json["error"]["message"] or "is deployed" in hidden.json["error"]["message"] \
        or "waiting" in hidden.json["error"]["message"]


def _filled(body, ids: dict):
    """A request body with the ids put in: "{case}" becomes that case's id, a number."""
    if isinstance(body, dict):
        return {key: _filled(value, ids) for key, value in body.items()}
    if isinstance(body, list):
        return [_filled(value, ids) for value in body]
    return ids[body[1:-1]] if isinstance(body, str) and re.fullmatch(r"\{\w+\}", body) else body


def _with_id(value, old: str, new: str):
    if isinstance(value, dict):
        return {key: _with_id(item, old, new) for key, item in value.items()}
    return value.replace(old, new) if isinstance(value, str) else value


class TestApiByIdTheOtherSettingsCaseDoesNotExist:
    @pytest.mark.parametrize("method, path, body, probe", [
        ("GET", "/cases/{case}", None, "case"), ("GET", "/tasks/{task}", None, "task"),
        ("GET", "/cases/{case}/tokens", None, "case"),
        ("POST", "/cases/{case}/notes", {"text": "Peeking"}, "case"),
        ("POST", "/cases/{case}/tasks", {"title": "Peek", "candidate_role": "case_manager"}, "case"),
        ("POST", "/cases/{case}/cancel", {"reason": "Peeking"}, "case"),
        ("POST", "/cases/{case}/suspend", {"reason": "Peeking"}, "case"),
        ("POST", "/cases/{case}/resume", {}, "case"),
        ("POST", "/cases/{case}/move", {"task_ref": "x", "target": "call", "reason": "Peeking"}, "case"),
        ("POST", "/incidents/{incident}/retry", {"skip": True}, "incident"),
        ("POST", "/incidents/{incident}/close", {"reason": "Peeking"}, "incident"),
        ("POST", "/tasks/{task}/claim", None, "task"), ("POST", "/tasks/{call}/unclaim", None, "call"),
        ("POST", "/tasks/{task}/complete", {"data": {}}, "task"), ("PUT", "/tasks/{task}/draft", {"data": {}}, "task"),
        ("POST", "/tasks/{task}/assign", {"assignee": "wendy"}, "task"),
        ("POST", f"/processes/{COMP_PROCESS}/migrations", {"case_ids": ["{case}"], "to_version": 1}, "case"),
    ])
    def test_answers_exactly_as_for_an_id_that_does_not_exist_and_changes_nothing(
            self, app, as_user, units, method, path, body, probe):
        wendy, before = as_user("wendy"), acute_state(app.extensions["casework"], units)
        real = {"case": units.acute, "task": units.acute_review, "call": units.acute_call,
                "incident": units.acute_incident}

        def ask(ids):
            return wendy.client.open(f"/api/v1{path.format(**ids)}", method=method, headers=wendy.headers,
                                     json=_filled(body, ids))
        same_as_missing(ask(real), ask(real | {probe: MISSING}), real[probe])
        assert acute_state(app.extensions["casework"], units) == before

    def test_a_message_reaches_only_a_case_the_sender_covers(self, app, as_user, units):
        wendy, before = as_user("wendy"), acute_state(app.extensions["casework"], units)
        to_case = [wendy.post("/messages", json={"name": "payer_answers", "case_id": case_id})
                   for case_id in (units.acute, MISSING)]
        same_as_missing(*to_case, units.acute)
        delivered = wendy.post("/messages", json={"name": "payer_answers", "payload": {"ok": True}})
        assert delivered.status_code == 200 and delivered.json["id"] == units.comp  # not "2 cases are waiting"
        assert acute_state(app.extensions["casework"], units) == before

    def test_a_case_of_another_settings_process_cannot_be_started(self, as_user, units):
        wendy = as_user("wendy")
        started = [wendy.post("/cases", json={"process_id": process_id}) for process_id in (ACUTE_PROCESS, "authz_never")]
        assert started[0].status_code == started[1].status_code == 404
        assert started[0].json == _with_id(started[1].json, "authz_never", ACUTE_PROCESS)
        assert wendy.post("/cases", json={"process_id": COMP_PROCESS}).status_code == 201

    @pytest.mark.parametrize("path", ["/processes/{p}/heatmap", "/processes/{p}/elements/review/cases",
                                      "/processes/{p}/diff?from=1&to=1", "/processes/{p}/migrations"])
    def test_a_process_of_another_setting_answers_as_one_not_deployed(self, as_user, units, path):
        wendy = as_user("wendy")
        hidden, missing = wendy.get(path.format(p=ACUTE_PROCESS)), wendy.get(path.format(p="authz_never"))
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json == _with_id(missing.json, "authz_never", ACUTE_PROCESS)


class TestApiListsAndFilters:
    @pytest.mark.parametrize("path", [
        "/cases", "/cases?status=active", f"/cases?process_id={ACUTE_PROCESS}", "/tasks", "/tasks?case_id={case}",
        "/tasks?role=case_manager", "/tasks?assignee=sue", "/tasks?status=open", "/tasks?status=claimed",
        "/tasks?queue=true", "/tasks?mine=true", "/stuck-cases", "/stuck-cases?setting=acute_hospital",
        f"/stuck-cases?process_id={ACUTE_PROCESS}", "/stuck-cases?assignee=sue", "/stuck-cases?reason=incident",
        "/kpis", "/kpis?setting=acute_hospital", f"/processes/{COMP_PROCESS}/elements/review/cases",
    ])
    def test_no_list_filter_or_report_shows_the_other_settings_case(self, as_user, units, path):
        response = as_user("wendy").get(path.format(case=units.acute))
        assert response.status_code == 200
        text = response.get_data(as_text=True)
        assert ACUTE_NAME not in text and ACUTE_MRN not in text and "acute_hospital" not in text.replace(
            "setting=acute_hospital", "")
        case_ids = {row["case_id"] if "case_id" in row else row["id"] for row in response.json.get("items", [])}
        assert units.acute not in case_ids

    def test_the_unfiltered_lists_show_the_users_own_setting_and_everything_to_who_covers_all(self, as_user, units):
        wendy, sue = as_user("wendy"), as_user("sue")
        assert [case["id"] for case in wendy.get("/cases").json["items"]] == [units.comp]
        assert {task["id"] for task in wendy.get("/tasks").json["items"]} == {units.comp_review, units.comp_call}
        assert {row["case_id"] for row in wendy.get("/stuck-cases").json["items"]} == {units.comp}
        assert set(wendy.get("/stuck-cases").json["by_setting"]) == {"workers_comp"}
        assert {case["id"] for case in sue.get("/cases").json["items"]} == {units.acute, units.comp}
        assert {row["case_id"] for row in sue.get("/stuck-cases").json["items"]} == {units.acute, units.comp}
