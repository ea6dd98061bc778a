"""A supervisor's fixes from the case page and the API: retry after correcting data, skip, close, move a token."""
from __future__ import annotations

import dataclasses
import html
from datetime import timedelta

import pytest

from service.web.case_repairs import read_corrections
from workflows import accounts, catalog, deployment, handlers
from workflows.errors import EngineFailure, InvalidInput
from workflows.handlers.scan import run_stuck_scan
from workflows.handlers.timers import TimerPolicy
from workflows.model import CaseStatus, FlagReason, IncidentStatus, TimerStatus
from workflows.ports import FlagQuery

from .conftest import NOW

# review -> compute (a script that needs gmlos_days) -> follow_up -> payer answers (message) -> record (script)
# -> wrap_up -> an hour later (timer) -> tally (script) -> close -> end.
REPAIRS_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="repairable_stay" name="Repairable stay" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="lane_cm" name="case_manager">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>review</bpmn:flowNodeRef><bpmn:flowNodeRef>compute</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>follow_up</bpmn:flowNodeRef><bpmn:flowNodeRef>payer_answers</bpmn:flowNodeRef><bpmn:flowNodeRef>record</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>wrap_up</bpmn:flowNodeRef><bpmn:flowNodeRef>an_hour_later</bpmn:flowNodeRef><bpmn:flowNodeRef>tally</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>close</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef>
    </bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="Review"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:scriptTask id="compute" name="Compute LOS index"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>stay_index = stay_days / gmlos_days</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="follow_up" name="Follow up"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>
    <bpmn:intermediateCatchEvent id="payer_answers" name="Payer answers"><bpmn:incoming>f4</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
      <bpmn:messageEventDefinition id="m1" messageRef="payer_decision">
        <bpmn:extensionElements><spiffworkflow:messageVariable>payer_decision</spiffworkflow:messageVariable></bpmn:extensionElements>
      </bpmn:messageEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="record" name="Record the payer's decision"><bpmn:incoming>f5</bpmn:incoming><bpmn:outgoing>f6</bpmn:outgoing>
      <bpmn:script>approved_days = payer_decision["approved_days"] + extra_days</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="wrap_up" name="Wrap up"><bpmn:incoming>f6</bpmn:incoming><bpmn:outgoing>f7</bpmn:outgoing></bpmn:userTask>
    <bpmn:intermediateCatchEvent id="an_hour_later" name="An hour later"><bpmn:incoming>f7</bpmn:incoming><bpmn:outgoing>f8</bpmn:outgoing>
      <bpmn:timerEventDefinition id="t1"><bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="tally" name="Tally"><bpmn:incoming>f8</bpmn:incoming><bpmn:outgoing>f9</bpmn:outgoing>
      <bpmn:script>average = total / count</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="close" name="Close"><bpmn:incoming>f9</bpmn:incoming><bpmn:outgoing>f10</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f10</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review" />
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="compute" />
    <bpmn:sequenceFlow id="f3" sourceRef="compute" targetRef="follow_up" />
    <bpmn:sequenceFlow id="f4" sourceRef="follow_up" targetRef="payer_answers" />
    <bpmn:sequenceFlow id="f5" sourceRef="payer_answers" targetRef="record" />
    <bpmn:sequenceFlow id="f6" sourceRef="record" targetRef="wrap_up" />
    <bpmn:sequenceFlow id="f7" sourceRef="wrap_up" targetRef="an_hour_later" />
    <bpmn:sequenceFlow id="f8" sourceRef="an_hour_later" targetRef="tally" />
    <bpmn:sequenceFlow id="f9" sourceRef="tally" targetRef="close" />
    <bpmn:sequenceFlow id="f10" sourceRef="close" targetRef="end" />
  </bpmn:process>
  <bpmn:message id="payer_decision" name="payer_decision" />
</bpmn:definitions>
"""


@pytest.fixture
def start(services):
    deployment.deploy_diagram_set(services, actor=None, diagram_set=catalog.DiagramSet(
        "acute_hospital", {"repairable_stay.bpmn": REPAIRS_BPMN.encode()}))
    carla = accounts.active_user(services, username="carla")

    def start_case(**data) -> int:
        return handlers.start_case(services, actor=carla, process_id="repairable_stay", data=data,
                                   subject_name="Maria Gonzalez", subject_ref="MRN-7").id
    return start_case


def user(services, name):
    return accounts.active_user(services, username=name)


def complete(services, case_id, element_id, data=None, *, fails=False):
    [task] = [t for t in handlers.get_case(services, case_id=case_id).open_tasks if t.element_id == element_id]
    if not fails:
        return handlers.complete_task(services, actor=user(services, "carla"), task_id=task.id, data=data or {})
    with pytest.raises(EngineFailure):
        handlers.complete_task(services, actor=user(services, "carla"), task_id=task.id, data=data or {})
    return task


def detail(services, case_id):
    return handlers.get_case(services, case_id=case_id)


def open_elements(services, case_id):
    return sorted(t.element_id for t in detail(services, case_id).open_tasks)


def kinds(services, case_id):
    return [e.kind for e in detail(services, case_id).events]


def page(visitor, case_id) -> str:
    return html.unescape(visitor.get(f"/cases/{case_id}").get_data(as_text=True))


@pytest.fixture
def failed_compute(services, start):
    """A case whose review was completed without the GMLOS the next script divides by: an open incident."""
    case_id = start(stay_days=6)
    complete(services, case_id, "review", {"note": "ok"}, fails=True)
    [incident] = detail(services, case_id).open_incidents
    return case_id, incident


class TestRetryingAFailedStep:
    def test_the_supervisor_corrects_the_data_retries_and_the_case_moves_on(self, visitor, services, failed_compute):
        case_id, incident = failed_compute
        sue = visitor("sue")
        assert "Retry the step" in page(sue, case_id)
        response = sue.post(f"/cases/{case_id}/incidents/{incident.id}/retry",
                            {"corrections": "gmlos_days: 4\n", "action": "retry"})
        assert response.status_code == 303
        after = detail(services, case_id)
        assert open_elements(services, case_id) == ["follow_up"] and after.open_incidents == []
        assert after.case.data["stay_index"] == 1.5 and after.case.data["gmlos_days"] == 4
        assert {"case_data_corrected", "incident_retried", "task_completed"} <= set(kinds(services, case_id))
        shown = page(sue, case_id)
        assert "was run again with the corrected data" in shown
        assert "corrected the case data: gmlos_days = 4" in shown and "retried the failed step" in shown

    def test_a_retry_that_fails_again_changes_nothing_and_keeps_the_newest_error(self, visitor, services, failed_compute):
        case_id, incident = failed_compute
        sue = visitor("sue")
        sue.get(f"/cases/{case_id}")
        sue.post(f"/cases/{case_id}/incidents/{incident.id}/retry", {"corrections": "gmlos_days: 0", "action": "retry"})
        [still] = detail(services, case_id).open_incidents
        assert still.id == incident.id and "ZeroDivisionError" in still.message and still.data["retries"] == 1
        assert open_elements(services, case_id) == ["review"]
        assert "gmlos_days" not in detail(services, case_id).case.data, "the failed retry's correction was rolled back"
        shown = page(sue, case_id)
        assert "ZeroDivisionError" in shown and "retried 1 time" in shown
        assert "incident_retry_failed" in kinds(services, case_id)

    def test_skipping_passes_over_the_failed_step(self, visitor, services, failed_compute):
        case_id, incident = failed_compute
        sue = visitor("sue")
        sue.get(f"/cases/{case_id}")
        sue.post(f"/cases/{case_id}/incidents/{incident.id}/retry", {"corrections": "", "action": "skip"})
        assert open_elements(services, case_id) == ["follow_up"]
        assert "stay_index" not in detail(services, case_id).case.data
        retried = [e for e in detail(services, case_id).events if e.kind == "incident_retried"]
        assert retried[0].payload["skipped"] == ["compute"]
        assert "skipped the failed step: Compute" in page(sue, case_id)

    def test_a_failed_message_is_delivered_again_after_the_correction(self, services, start):
        case_id = start(stay_days=6, gmlos_days=3)
        complete(services, case_id, "review")
        complete(services, case_id, "follow_up")
        sue = user(services, "sue")
        with pytest.raises(EngineFailure, match="extra_days"):
            handlers.deliver_message(services, actor=sue, name="payer_decision", payload={"approved_days": 3},
                                     case_id=case_id)
        [incident] = detail(services, case_id).open_incidents
        handlers.retry_incident(services, actor=sue, incident_id=incident.id, corrections={"extra_days": 2})
        assert detail(services, case_id).case.data["approved_days"] == 5
        assert open_elements(services, case_id) == ["wrap_up"]

    def test_a_timer_that_gave_up_fires_again_on_retry(self, services, start):
        case_id = start(stay_days=6, gmlos_days=3, extra_days=0, total=10, count=0)
        complete(services, case_id, "review")
        complete(services, case_id, "follow_up")
        handlers.deliver_message(services, actor=user(services, "sue"), name="payer_decision",
                                 payload={"approved_days": 3}, case_id=case_id)
        complete(services, case_id, "wrap_up")
        later = dataclasses.replace(services, clock=type("Later", (), {"now": lambda self: NOW + timedelta(hours=2)})())
        handlers.fire_due_timers(later, policy=TimerPolicy(retry_delays=()))
        [incident] = detail(services, case_id).open_incidents
        with services.uow(read_only=True) as uow:
            assert [t.status for t in uow.timers.for_case(case_id, pending_only=False)] == [TimerStatus.FAILED]
        handlers.retry_incident(later, actor=user(services, "sue"), incident_id=incident.id, corrections={"count": 2})
        assert detail(services, case_id).case.data["average"] == 5 and open_elements(services, case_id) == ["close"]
        with services.uow(read_only=True) as uow:
            [row] = uow.timers.for_case(case_id, pending_only=False)
            assert row.status == TimerStatus.FIRED
        [fired] = [e for e in detail(services, case_id).events if e.kind == "timer_fired"]
        assert fired.payload["timer_id"] == row.id and fired.payload["retry_of_incident"] == incident.id

    def test_a_fix_clears_the_case_from_the_stuck_list_at_once(self, services, failed_compute):
        case_id, incident = failed_compute
        run_stuck_scan(services, owner="test", every=timedelta(0), idle_days=7, timer_grace=timedelta(minutes=1))
        with services.uow(read_only=True) as uow:
            assert [f.reason for f in uow.flags.query(FlagQuery(case_id=case_id))] == [FlagReason.INCIDENT]
        handlers.retry_incident(services, actor=user(services, "sue"), incident_id=incident.id,
                                corrections={"gmlos_days": 3})
        with services.uow(read_only=True) as uow:
            assert uow.flags.query(FlagQuery(case_id=case_id)) == []

    def test_closing_needs_a_reason_and_leaves_the_case_where_it_is(self, visitor, services, failed_compute):
        case_id, incident = failed_compute
        sue = visitor("sue")
        sue.get(f"/cases/{case_id}")
        sue.post(f"/cases/{case_id}/incidents/{incident.id}/close", {"reason": " "})
        assert "Say why the failed step can be closed" in page(sue, case_id)
        sue.post(f"/cases/{case_id}/incidents/{incident.id}/close", {"reason": "Handled by phone with the payer"})
        assert detail(services, case_id).open_incidents == [] and open_elements(services, case_id) == ["review"]
        assert "closed the incident: Handled by phone with the payer" in page(sue, case_id)

    def test_only_a_supervisor_may_retry_and_a_held_case_must_be_resumed_first(self, visitor, services, failed_compute):
        case_id, incident = failed_compute
        carla = visitor("carla")
        assert "Retry the step" not in page(carla, case_id)
        carla.post(f"/cases/{case_id}/incidents/{incident.id}/retry", {"corrections": "gmlos_days: 4"})
        assert "Only supervisors can retry a failed step" in page(carla, case_id)
        sue = user(services, "sue")
        handlers.suspend_case(services, actor=sue, case_id=case_id, reason="Transferred for surgery")
        with pytest.raises(Exception, match="on hold; resume it"):
            handlers.retry_incident(services, actor=sue, incident_id=incident.id, corrections={"gmlos_days": 4})
        assert detail(services, case_id).open_incidents[0].status == IncidentStatus.OPEN

    def test_unreadable_corrections_are_refused_naming_the_line(self, visitor, services, failed_compute):
        case_id, incident = failed_compute
        sue = visitor("sue")
        sue.get(f"/cases/{case_id}")
        sue.post(f"/cases/{case_id}/incidents/{incident.id}/retry", {"corrections": "gmlos_days 4", "action": "retry"})
        assert "line 1: write it as name: value" in page(sue, case_id)
        assert detail(services, case_id).open_incidents[0].id == incident.id


class TestReadingCorrections:
    def test_values_that_read_as_json_keep_their_type_and_the_rest_is_text(self):
        assert read_corrections('gmlos_days: 4\nwork_status: restricted_duty\nflag: true\ncode: "007"\n\n') == {
            "gmlos_days": 4, "work_status": "restricted_duty", "flag": True, "code": "007"}

    def test_a_line_without_a_name_is_refused(self):
        with pytest.raises(InvalidInput) as refused:
            read_corrections("4\n: x")
        assert refused.value.field_errors["corrections"][0].startswith("line 1")


class TestMovingAToken:
    def test_the_supervisor_moves_the_case_on_from_the_page(self, visitor, services, start):
        case_id = start(stay_days=6, gmlos_days=3)
        complete(services, case_id, "review")
        sue = visitor("sue")
        shown = page(sue, case_id)
        assert "Move the case to another step" in shown and "Wrap up (user task)" in shown
        [choice] = handlers.token_choices(services, actor=user(services, "sue"), case_id=case_id)
        response = sue.post(f"/cases/{case_id}/move", {"move": f"{choice.token.task_ref}>wrap_up",
                                                       "reason": "Payer approved by phone"})
        assert response.status_code == 303
        assert open_elements(services, case_id) == ["wrap_up"]
        [moved] = [e for e in detail(services, case_id).events if e.kind == "token_moved"]
        assert moved.payload["from_element"] == "follow_up" and moved.payload["to_element"] == "wrap_up"
        assert "task_cancelled" in kinds(services, case_id)
        shown = page(sue, case_id)
        assert "moved from “Follow up” to “Wrap up”" in shown
        assert "moved the case: from Follow up to Wrap up (reason: Payer approved by phone)" in shown

    def test_moving_off_a_failed_step_closes_its_incident(self, services, failed_compute):
        case_id, incident = failed_compute
        sue = user(services, "sue")
        [choice] = handlers.token_choices(services, actor=sue, case_id=case_id)
        handlers.move_token(services, actor=sue, case_id=case_id, task_ref=choice.token.task_ref,
                            target_id="follow_up", reason="GMLOS not known; index not needed")
        assert open_elements(services, case_id) == ["follow_up"] and detail(services, case_id).open_incidents == []
        assert "incident_closed" in kinds(services, case_id)

    def test_a_stale_token_a_missing_reason_and_a_case_manager_are_refused(self, visitor, services, start):
        case_id = start(stay_days=6, gmlos_days=3)
        sue = visitor("sue")
        sue.get(f"/cases/{case_id}")
        [choice] = handlers.token_choices(services, actor=user(services, "sue"), case_id=case_id)
        sue.post(f"/cases/{case_id}/move", {"move": f"{choice.token.task_ref}>wrap_up", "reason": ""})
        assert "say why" in page(sue, case_id) and open_elements(services, case_id) == ["review"]
        complete(services, case_id, "review")
        sue.post(f"/cases/{case_id}/move", {"move": f"{choice.token.task_ref}>wrap_up", "reason": "late"})
        assert "no longer has that token" in page(sue, case_id)
        assert open_elements(services, case_id) == ["follow_up"]
        carla = visitor("carla")
        assert "Move the case to another step" not in page(carla, case_id)
        carla.post(f"/cases/{case_id}/move", {"move": f"{choice.token.task_ref}>wrap_up", "reason": "late"})
        assert "Only supervisors can move a case's token" in page(carla, case_id)


class TestTheApi:
    @pytest.fixture
    def sue_token(self, services):
        return accounts.add_user(services, username="sid", roles=["supervisor"], settings=["acute_hospital"])[1]

    def call(self, app, method, path, token, body=None):
        return app.test_client().open(path, method=method, json=body, headers={"Authorization": f"Bearer {token}"})

    def test_retry_close_tokens_and_move_through_the_api(self, app, services, failed_compute, sue_token):
        case_id, incident = failed_compute
        refused = self.call(app, "POST", f"/api/v1/incidents/{incident.id}/retry", sue_token,
                            {"corrections": {"gmlos_days": 0}})
        assert refused.status_code == 422 and "ZeroDivisionError" in refused.json["error"]["message"]
        done = self.call(app, "POST", f"/api/v1/incidents/{incident.id}/retry", sue_token,
                         {"corrections": {"gmlos_days": 2}})
        assert done.status_code == 200 and done.json["status"] == "resolved" and done.json["resolution"] == "retried"
        again = self.call(app, "POST", f"/api/v1/incidents/{incident.id}/retry", sue_token, {})
        assert again.status_code == 409 and "already resolved" in again.json["error"]["message"]
        tokens = self.call(app, "GET", f"/api/v1/cases/{case_id}/tokens", sue_token).json["items"]
        assert [t["element_id"] for t in tokens] == ["follow_up"]
        assert "wrap_up" in [target["element_id"] for target in tokens[0]["targets"]]
        moved = self.call(app, "POST", f"/api/v1/cases/{case_id}/move", sue_token,
                          {"task_ref": tokens[0]["task_ref"], "target": "close", "reason": "Closing early"})
        assert moved.status_code == 200 and open_elements(services, case_id) == ["close"]
        nowhere = self.call(app, "POST", f"/api/v1/cases/{case_id}/move", sue_token,
                            {"task_ref": tokens[0]["task_ref"], "target": "close", "reason": "again"})
        assert nowhere.status_code == 409
        assert self.call(app, "POST", "/api/v1/incidents/999999/close", sue_token,
                         {"reason": "x"}).status_code == 404

    def test_a_case_manager_and_a_supervisor_of_another_setting_are_refused(self, app, services, failed_compute):
        case_id, incident = failed_compute
        _, manager = accounts.add_user(services, username="cm", roles=["case_manager"])
        _, other = accounts.add_user(services, username="wsup", roles=["supervisor"], settings=["workers_comp"])
        assert self.call(app, "POST", f"/api/v1/incidents/{incident.id}/retry", manager, {}).status_code == 403
        assert self.call(app, "GET", f"/api/v1/cases/{case_id}/tokens", manager).status_code == 403
        assert self.call(app, "POST", f"/api/v1/incidents/{incident.id}/retry", other, {}).status_code in (403, 404)
        assert detail(services, case_id).open_incidents[0].status == IncidentStatus.OPEN
        assert detail(services, case_id).case.status == CaseStatus.ACTIVE
