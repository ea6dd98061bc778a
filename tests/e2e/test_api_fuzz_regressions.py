"""Server errors found by the API fuzzer (tests/e2e/test_api_fuzz.py), and by probing the same kinds
of input by hand, each now a clear 4xx that changes nothing (or a success), on both databases.

SQLite could not bind integers past 64 bits; PostgreSQL refused NUL characters, NaN and
Infinity, and text longer than its column (an incident's resolution, an uploaded file's
name); neither stores unpaired surrogates; JSON nested deep enough exhausted the stack;
dates at the ends of the calendar overflowed when moved to UTC; and a case whose timer had
failed could not be taken off hold.
"""
from __future__ import annotations

import dataclasses
from datetime import timedelta
from io import BytesIO

import pytest

from tests.e2e.conftest import diagram_files
from tests.e2e.test_api_cases import ACUTE, deploy_acute, open_task, start_case
from tests.unit.test_engine import SCRIPT_PROCESS
from workflows import handlers
from workflows.handlers.timers import TimerPolicy
from workflows.model import TimerStatus

# An hour after the start a script divides by `count`: with count 0 the timer fails for good.
TIMER_THEN_TALLY = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="tallied" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="an_hour_later" name="An hour later"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="t1"><bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="tally" name="Tally"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>average = total / count</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="close" name="Close"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="an_hour_later" />
    <bpmn:sequenceFlow id="f2" sourceRef="an_hour_later" targetRef="tally" />
    <bpmn:sequenceFlow id="f3" sourceRef="tally" targetRef="close" />
    <bpmn:sequenceFlow id="f4" sourceRef="close" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""

PAST_64_BITS = 2**64 + 1
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def case(as_user):
    """A case of the review diagram with its first task claimed by carla."""
    deploy_acute(as_user)
    carla = as_user("carla")
    case = start_case(carla)
    task = open_task(carla, case["id"])
    assert carla.post(f"/tasks/{task['id']}/claim").status_code == 200
    return {**case, "task_id": task["id"]}


def post_raw(api, path: str, body: str):
    """POST a JSON text as it is, for what Python's json module would not write."""
    return api.client.post(f"/api/v1{path}", data=body, headers={**api.headers, **JSON})


def put_raw(api, path: str, body: str):
    return api.client.put(f"/api/v1{path}", data=body, headers={**api.headers, **JSON})


def refused(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.json["error"]
    if field is not None:
        assert field in error["field_errors"], error
    return error


def unchanged(api, case: dict):
    """What a refused request must leave as it was: the case's version, tasks, notes and draft."""
    detail = api.get(f"/cases/{case['id']}").json
    task = api.get(f"/tasks/{case['task_id']}").json
    return detail["version"], detail["open_tasks"], detail["notes"], task["draft"]


class TestIdsPastWhatADatabaseHolds:
    def test_a_path_id_past_64_bits_is_a_404_naming_the_id(self, as_user, case):
        sue = as_user("sue")
        before = unchanged(sue, case)
        for method, path in (("GET", "/cases/{}"), ("GET", "/tasks/{}"), ("POST", "/tasks/{}/claim"),
                             ("POST", "/cases/{}/notes"), ("POST", "/incidents/{}/close"),
                             ("GET", "/process-versions/{}/files/acute.bpmn")):
            response = sue.client.open(f"/api/v1{path.format(PAST_64_BITS)}", method=method, headers=sue.headers,
                                       json={"text": "x", "reason": "x"} if method == "POST" else None)
            assert str(PAST_64_BITS) in refused(response, 404)["message"], path
        assert unchanged(sue, case) == before

    def test_without_a_token_a_huge_id_is_still_a_401_first(self, app, users):
        assert app.test_client().get(f"/api/v1/cases/{PAST_64_BITS}").status_code == 401

    def test_an_id_or_offset_past_its_range_in_a_query_is_a_400_naming_the_parameter(self, as_user, case):
        sue = as_user("sue")
        for path, field in (("/tasks?case_id={}", "case_id"), ("/cases?offset={}", "offset"),
                            ("/tasks?offset={}", "offset"), ("/stuck-cases?offset={}", "offset"),
                            ("/processes/acute_utilization_review/heatmap?version={}", "version")):
            refused(sue.get(path.format(PAST_64_BITS)), 400, field)

    def test_an_id_past_its_range_in_a_body_is_a_400_naming_the_field(self, as_user, case):
        sue = as_user("sue")
        before = unchanged(sue, case)
        refused(sue.post("/messages", json={"name": "payer_decision", "case_id": PAST_64_BITS}), 400, "case_id")
        migrate = {"case_ids": [PAST_64_BITS], "to_version": 1}
        refused(sue.post("/processes/acute_utilization_review/migrations", json=migrate), 400, "case_ids")
        assert unchanged(sue, case) == before


class TestTextNoDatabaseStores:
    def test_a_nul_character_in_a_query_or_path_is_a_400_naming_the_parameter(self, as_user, case):
        sue = as_user("sue")
        for path, field in (("/stuck-cases?setting=acute%00", "setting"), ("/tasks?role=case%00manager", "role"),
                            ("/cases?process_id=a%00b", "process_id"),
                            ("/process-versions?process_id=%00", "process_id"),
                            ("/processes/a%00b/heatmap", "process_id"),
                            ("/process-versions/1/files/a%00.bpmn", "path")):
            error = refused(sue.get(path), 400, field)
            assert "NUL" in error["message"], path

    def test_a_nul_character_in_a_body_is_a_400_naming_the_field_and_changes_nothing(self, as_user, case):
        carla = as_user("carla")
        before = unchanged(carla, case)
        refused(carla.post(f"/cases/{case['id']}/notes", json={"text": "BP 120/80\x00"}), 400, "text")
        refused(carla.put(f"/tasks/{case['task_id']}/draft", json={"data": {"notes": "a\x00b"}}), 400, "data.notes")
        error = refused(carla.put(f"/tasks/{case['task_id']}/draft", json={"data": {"no\x00tes": "ab"}}), 400)
        assert list(error["field_errors"]) == ["data.no\\x00tes"]
        refused(carla.post("/cases", json={"process_id": "acute_utilization_review", "subject_name": "\x00"}),
                400, "subject_name")
        assert unchanged(carla, case) == before

    def test_an_unpaired_surrogate_is_not_text_and_is_a_400(self, as_user, case):
        carla, dana = as_user("carla"), as_user("dana")
        before = unchanged(carla, case)
        error = refused(post_raw(carla, f"/cases/{case['id']}/notes", '{"text": "\\udc00"}'), 400, "text")
        assert "surrogate" in error["message"]
        refused(put_raw(carla, f"/tasks/{case['task_id']}/draft", '{"data": {"a": ["\\ud800"]}}'), 400, "data.a[0]")
        versions = carla.get("/process-versions").json["items"]
        refused(post_raw(dana, "/process-versions", '{"name": "x", "files": {"x.bpmn": "<a>\\udfff</a>"}}'),
                400, "files.x.bpmn")
        assert carla.get("/process-versions").json["items"] == versions
        assert unchanged(carla, case) == before

    @pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
    def test_nan_and_infinity_are_a_400_naming_the_field(self, as_user, case, number):
        carla = as_user("carla")
        before = unchanged(carla, case)
        error = refused(put_raw(carla, f"/tasks/{case['task_id']}/draft", f'{{"data": {{"los": {number}}}}}'),
                        400, "data.los")
        assert "finite" in error["message"]
        assert unchanged(carla, case) == before


class TestUploadedFileNames:
    @pytest.mark.parametrize("name, problem", [("forms/" + "a" * 300 + ".json", "at most 255 characters"),
                                               ("forms/a\x00.json", "NUL")], ids=["too-long", "nul"])
    def test_an_upload_whose_name_cannot_be_stored_is_a_400_and_nothing_is_deployed(self, as_user, name, problem):
        dana = as_user("dana")
        uploads = [(BytesIO(text.encode()), path) for path, text in diagram_files(ACUTE).items()]
        response = dana.post("/process-versions", content_type="multipart/form-data",
                             data={"name": "acute_hospital", "file": [*uploads, (BytesIO(b"{}"), name)]})
        assert problem in refused(response, 400, "file")["message"]
        assert dana.get("/process-versions").json["items"] == []


class TestLongReasons:
    def test_closing_an_incident_with_the_longest_reason_allowed_keeps_it_in_the_event(self, as_user):
        files = {"scripted.bpmn": SCRIPT_PROCESS.replace("{script}", "ratio = 1 / 0")}
        assert as_user("dana").post("/process-versions", json={"name": "scripted", "files": files}).status_code == 201
        sue = as_user("sue")
        case = sue.post("/cases", json={"process_id": "scripted"}).json
        task = open_task(sue, case["id"])
        incident_id = sue.post(f"/tasks/{task['id']}/complete", json={"data": {}}).json["error"]["incident_id"]
        reason = "Payer confirmed by phone; " + "x" * (2000 - 26)

        closed = sue.post(f"/incidents/{incident_id}/close", json={"reason": reason})
        assert closed.status_code == 200, closed.json  # was a 500 on PostgreSQL: resolution is 50 characters
        assert (closed.json["status"], closed.json["resolution"]) == ("resolved", "closed")
        events = sue.get(f"/cases/{case['id']}").json["events"]
        assert events[-1]["kind"] == "incident_closed" and events[-1]["payload"]["reason"] == reason
        too_long = sue.post(f"/incidents/{incident_id}/close", json={"reason": reason + "x"})
        refused(too_long, 400, "reason")


class TestHoldingACaseWithAFailedTimer:
    def test_a_case_whose_timer_gave_up_can_be_put_on_hold_and_taken_off_it(self, app, as_user):
        files = {"tallied.bpmn": TIMER_THEN_TALLY}
        assert as_user("dana").post("/process-versions", json={"name": "tallied", "files": files}).status_code == 201
        sue = as_user("sue")
        case = sue.post("/cases", json={"process_id": "tallied", "data": {"total": 10, "count": 0}}).json
        services = app.extensions["casework"]
        later = type("Later", (), {"now": lambda self: services.clock.now() + timedelta(hours=2)})()
        handlers.fire_due_timers(dataclasses.replace(services, clock=later), policy=TimerPolicy(retry_delays=()))
        [incident] = sue.get(f"/cases/{case['id']}").json["incidents"]
        with services.uow(read_only=True) as uow:
            assert [t.status for t in uow.timers.for_case(case["id"], pending_only=False)] == [TimerStatus.FAILED]

        assert sue.post(f"/cases/{case['id']}/suspend", json={"reason": "Patient transferred out"}).status_code == 200
        resumed = sue.post(f"/cases/{case['id']}/resume", json={})
        assert resumed.status_code == 200, resumed.json  # was a 500: a second timer row for the failed one
        detail = sue.get(f"/cases/{case['id']}").json
        assert detail["status"] == "active" and [i["id"] for i in detail["incidents"]] == [incident["id"]]


class TestJsonNestedPastReason:
    def test_json_nested_deeper_than_the_stack_is_a_400(self, as_user, case):
        carla = as_user("carla")
        before = unchanged(carla, case)
        deep = "[" * 100_000 + "]" * 100_000
        error = refused(put_raw(carla, f"/tasks/{case['task_id']}/draft", f'{{"data": {{"a": {deep}}}}}'), 400)
        assert "nested too deeply" in error["message"]
        assert unchanged(carla, case) == before

    def test_json_nested_past_32_levels_is_a_400_naming_where(self, as_user, case):
        carla = as_user("carla")
        nested = "[" * 40 + "]" * 40
        error = refused(put_raw(carla, f"/tasks/{case['task_id']}/draft", f'{{"data": {{"a": {nested}}}}}'), 400)
        [where] = error["field_errors"]
        assert where.startswith("data.a[0][0]") and "32 levels" in error["message"]
        assert carla.put(f"/tasks/{case['task_id']}/draft", json={"data": {"a": [[[1]]]}}).status_code == 200


class TestDatesAtTheEndsOfTheCalendar:
    @pytest.mark.parametrize("query, field", [("from=9999-12-31&to=9999-12-31", "from"), ("to=0001-01-05", "to")])
    def test_a_kpi_period_at_the_ends_of_the_calendar_is_a_400(self, as_user, query, field):
        deploy_acute(as_user)
        error = refused(as_user("sue").get(f"/kpis?{query}"), 400, field)
        assert "between 1900-01-01 and 2999-12-31" in error["field_errors"][field][0]

    def test_an_ad_hoc_task_due_past_what_utc_can_hold_is_a_400_and_no_task(self, as_user, case):
        sue = as_user("sue")
        before = unchanged(sue, case)
        body = {"title": "Call the payer", "assignee": "sue", "due_at": "9999-12-31T23:59:59-14:00"}
        refused(sue.post(f"/cases/{case['id']}/tasks", json=body), 400, "due_at")
        assert unchanged(sue, case) == before

