"""Bad input of every kind gets a clear JSON error and changes nothing."""
from __future__ import annotations

import pytest

from tests.corpus import conformance_dir
from tests.e2e.conftest import ENGINE_DATA, diagram_files
from tests.e2e.test_api_cases import deploy_acute, open_task, start_case
from tests.unit.test_engine import SCRIPT_PROCESS

CONFORMANCE = conformance_dir()

GOOD_PROCESS = SCRIPT_PROCESS.replace("{script}", "x = 1")


def deploy(as_user, name, files):
    return as_user("dana").post("/process-versions", json={"name": name, "files": files})


def versions(as_user):
    return as_user("carla").get("/process-versions").json["items"]


class TestAuthentication:
    def test_requests_without_a_valid_token_are_refused(self, app, users):
        client = app.test_client()
        assert client.get("/api/v1/tasks").status_code == 401
        refused = client.post("/api/v1/cases", json={"process_id": "x"}, headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401
        assert "API token" in refused.json["error"]["message"]
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")

    def test_the_openapi_document_is_public_and_lists_every_endpoint(self, app):
        document = app.test_client().get("/api/v1/openapi.json").json
        assert document["openapi"].startswith("3.")
        paths = document["paths"]
        for path in ("/api/v1/cases", "/api/v1/cases/{case_id}", "/api/v1/tasks", "/api/v1/tasks/{task_id}/claim",
                     "/api/v1/tasks/{task_id}/unclaim", "/api/v1/tasks/{task_id}/complete", "/api/v1/messages",
                     "/api/v1/process-versions"):
            assert path in paths, path
        assert "StartCaseRequest" in document["components"]["schemas"]


class TestWrongIdsAndBodies:
    def test_unknown_case_task_and_route_give_json_404s(self, as_user):
        carla = as_user("carla")
        assert carla.get("/cases/999999").json["error"]["message"] == "Case 999999 does not exist."
        assert carla.post("/tasks/999999/claim").status_code == 404
        assert carla.get("/no-such-thing").json["error"]["status"] == 404

    def test_a_request_body_that_breaks_the_schema_names_each_field(self, as_user):
        response = as_user("carla").post("/cases", json={"priority": 9, "surprise": 1})
        assert response.status_code == 400
        fields = response.json["error"]["field_errors"]
        assert set(fields) == {"process_id", "priority", "surprise"}

    def test_a_body_that_is_not_json_is_refused(self, as_user):
        response = as_user("carla").client.post("/api/v1/cases", data="process_id=x", headers=as_user("carla").headers)
        assert response.status_code == 400
        assert "JSON" in response.json["error"]["message"]

    def test_starting_a_process_that_is_not_deployed_is_a_404(self, as_user):
        response = as_user("carla").post("/cases", json={"process_id": "nope"})
        assert response.status_code == 404 and "No process 'nope' is deployed." == response.json["error"]["message"]


class TestFormValidation:
    def test_data_that_violates_the_form_gets_field_errors_and_changes_nothing(self, as_user):
        deploy_acute(as_user)
        carla = as_user("carla")
        case = start_case(carla)
        task = open_task(carla, case["id"])
        before = carla.get(f"/cases/{case['id']}").json

        response = carla.post(f"/tasks/{task['id']}/complete", json={"data": {
            "status_recommendation": "admitted", "expected_midnights": -1, "favourite_colour": "blue",
        }})
        assert response.status_code == 400
        fields = response.json["error"]["field_errors"]
        assert set(fields) == {"status_recommendation", "expected_midnights", "criteria_met", "favourite_colour"}
        assert fields["criteria_met"] == ["This field is required."]

        after = carla.get(f"/cases/{case['id']}").json
        assert after["version"] == before["version"]
        assert after["events"] == before["events"]
        assert after["open_tasks"] == before["open_tasks"]


class TestBrokenDiagrams:
    @pytest.mark.parametrize("label, files, expected", [
        ("malformed", {"a.bpmn": "<bpmn:definitions xmlns:bpmn='http://www.omg.org/spec/BPMN/20100524/MODEL'><oops>"},
         "a.bpmn"),
        ("unknown reference", {"a.bpmn": GOOD_PROCESS.replace('targetRef="after"', 'targetRef="nowhere"')}, "nowhere"),
        ("unquoted timer", {"a.bpmn": (ENGINE_DATA / "payer_wait.bpmn").read_text().replace('"PT24H"', "PT24H")},
         "must be quoted"),
    ])
    def test_a_broken_diagram_gets_one_clear_error_and_nothing_is_deployed(self, as_user, label, files, expected):
        response = deploy(as_user, "broken", files)
        assert response.status_code == 400, response.json
        error = response.json["error"]
        assert expected in error["message"]
        assert error["problems"] and all(p["file"] == "a.bpmn" for p in error["problems"])
        assert versions(as_user) == []

    @pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="conformance corpus not present")
    def test_a_conformance_file_spiffworkflow_crashes_on_is_refused_cleanly(self, as_user):
        # MIWG C.7.0: SpiffWorkflow's parser raises AttributeError, not a ValidationException.
        path = CONFORMANCE / "miwg" / "reference" / "C.7.0.bpmn"
        response = deploy(as_user, "miwg_c70", {"C.7.0.bpmn": path.read_text()})
        assert response.status_code == 400
        assert response.json["error"]["problems"][0]["file"] == "C.7.0.bpmn"
        assert versions(as_user) == []


class TestScriptsThatMisbehave:
    @pytest.mark.parametrize("script", [
        "import os",
        "secret = open('/etc/passwd').read()",
        "cls = ().__class__",
    ], ids=["import-os", "read-file", "dunder"])
    def test_a_script_using_what_the_sandbox_forbids_is_refused_at_deployment(self, as_user, script):
        files = {"scripted.bpmn": SCRIPT_PROCESS.replace("{script}", script)}
        response = deploy(as_user, "scripted", files)
        assert response.status_code == 400, response.json
        problems = str(response.json)
        assert "the_script" in problems and "sandbox forbids" in problems
        listed = as_user("sue").get("/process-versions?process_id=scripted").json
        assert listed["items"] == [], "nothing was deployed"

    @pytest.mark.parametrize("script", [
        "while True:\n    pass",
        "ratio = 1 / 0",
        "big = 'x' * 10**8",
    ], ids=["endless-loop", "division-by-zero", "huge-allocation"])
    def test_a_bad_script_raises_an_incident_and_the_worker_carries_on(self, as_user, script):
        files = {"scripted.bpmn": SCRIPT_PROCESS.replace("{script}", script)}
        assert deploy(as_user, "scripted", files).status_code == 201
        sue = as_user("sue")
        case = sue.post("/cases", json={"process_id": "scripted"}).json
        task = open_task(sue, case["id"])

        response = sue.post(f"/tasks/{task['id']}/complete", json={"data": {"note": "typed by hand"}})
        assert response.status_code == 422
        error = response.json["error"]
        assert "the_script" in error["message"] and error["incident_id"]

        detail = sue.get(f"/cases/{case['id']}").json
        assert [t["id"] for t in detail["open_tasks"]] == [task["id"]], "the task stays open"
        assert detail["version"] == case["version"]
        [incident] = detail["incidents"]
        assert incident["element_id"] == "the_script" and incident["kind"] == "script"
        assert detail["events"][-1]["kind"] == "incident_raised"
        assert "secret" not in detail["data"] and "root:" not in str(detail)

        assert sue.get("/tasks").status_code == 200, "the worker still serves requests"


class TestMessagesAndTimers:
    def test_a_message_reaches_the_waiting_case_and_unknown_messages_are_404(self, app, as_user):
        assert deploy(as_user, "engine", diagram_files(ENGINE_DATA)).status_code == 201
        sue = as_user("sue")
        case = sue.post("/cases", json={"process_id": "payer_wait"}).json
        task = open_task(sue, case["id"])
        sue.post(f"/tasks/{task['id']}/complete", json={"data": {}})

        missing = sue.post("/messages", json={"name": "payer_decision", "payload": {"approved": True}})
        assert missing.status_code == 404, "still waiting on the 24 h timer"

        services = app.extensions["casework"]
        from workflows import handlers
        from datetime import timedelta
        real_clock = services.clock
        later = real_clock.now() + timedelta(hours=25)
        services.clock = type("Later", (), {"now": staticmethod(lambda: later)})()
        try:
            assert handlers.fire_due_timers(services) == 1
            assert handlers.fire_due_timers(services) == 0, "a timer fires once"
        finally:
            services.clock = real_clock

        delivered = sue.post("/messages", json={"name": "payer_decision", "payload": {"approved": True}})
        assert delivered.status_code == 200, delivered.json
        detail = sue.get(f"/cases/{case['id']}").json
        assert [t["element_id"] for t in detail["open_tasks"]] == ["follow_up"]
        kinds = [(e["kind"], e["actor"]) for e in detail["events"]]
        assert ("timer_fired", "scheduler") in kinds and ("message_received", "sue") in kinds
        assert detail["data"]["payer_decision"] == {"approved": True}


class TestStoppedDatabase:
    def test_a_request_while_the_database_is_down_gets_a_503_and_changes_nothing(self, app, as_user):
        from service.persistence import UnitOfWorkFactory, make_engine

        services = app.extensions["casework"]
        working = services.uow
        services.uow = UnitOfWorkFactory(make_engine("postgresql+psycopg://127.0.0.1:5999/stopped"))
        try:
            carla = as_user("carla")
            response = carla.client.get("/api/v1/tasks", headers=carla.headers)
        finally:
            services.uow = working
        assert response.status_code == 503
        assert response.json["error"]["message"].startswith("The database is unavailable")
        assert as_user("carla").get("/tasks").status_code == 200
