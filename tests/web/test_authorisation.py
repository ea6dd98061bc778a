"""Who may use what on the web pages: a user of one setting sees nothing of another setting's cases.

A case of a setting the user does not cover answers exactly as a case that does not exist,
by id, in every list, search, filter and export. The API's side, and the inventory of
every route (classified, anonymous visitors refused, roles enforced), are in
tests/e2e/test_api_authorisation.py.
"""
from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest

from workflows import accounts, catalog, deployment, handlers
from workflows.handlers.scan import run_stuck_scan
from workflows.model import Incident

from .conftest import tab_counts, task_titles

MISSING = 987654321  # no case, task or incident has this id
ACUTE_NAME, ACUTE_MRN = "Alice Acutely", "MRN-ACUTE-4711"
COMP_NAME, COMP_CLAIM = "Walter Worker", "CLM-COMP-0815"
ACUTE_PROCESS, COMP_PROCESS = "authz_acute_stay", "authz_comp_claim"
# review and call (a case manager's, side by side) and a payer's message; all three join at the end.
UNIT_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="{pid}" name="{title}" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="cm" name="case_manager">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>split</bpmn:flowNodeRef><bpmn:flowNodeRef>review</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>call</bpmn:flowNodeRef><bpmn:flowNodeRef>payer_answers</bpmn:flowNodeRef><bpmn:flowNodeRef>join</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>end</bpmn:flowNodeRef>
    </bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f0</bpmn:outgoing></bpmn:startEvent>
    <bpmn:parallelGateway id="split"><bpmn:incoming>f0</bpmn:incoming><bpmn:outgoing>f1</bpmn:outgoing><bpmn:outgoing>f2</bpmn:outgoing><bpmn:outgoing>f3</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:userTask id="review" name="Review {title}"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="call" name="Call about {title}"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing></bpmn:userTask>
    <bpmn:intermediateCatchEvent id="payer_answers" name="Payer answers"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f6</bpmn:outgoing>
      <bpmn:messageEventDefinition id="m1" messageRef="payer_message">
        <bpmn:extensionElements><spiffworkflow:messageVariable>payer_answer</spiffworkflow:messageVariable></bpmn:extensionElements>
      </bpmn:messageEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:parallelGateway id="join"><bpmn:incoming>f4</bpmn:incoming><bpmn:incoming>f5</bpmn:incoming><bpmn:incoming>f6</bpmn:incoming><bpmn:outgoing>f7</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:endEvent id="end"><bpmn:incoming>f7</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f0" sourceRef="start" targetRef="split" />
    <bpmn:sequenceFlow id="f1" sourceRef="split" targetRef="review" />
    <bpmn:sequenceFlow id="f2" sourceRef="split" targetRef="call" />
    <bpmn:sequenceFlow id="f3" sourceRef="split" targetRef="payer_answers" />
    <bpmn:sequenceFlow id="f4" sourceRef="review" targetRef="join" />
    <bpmn:sequenceFlow id="f5" sourceRef="call" targetRef="join" />
    <bpmn:sequenceFlow id="f6" sourceRef="payer_answers" targetRef="join" />
    <bpmn:sequenceFlow id="f7" sourceRef="join" targetRef="end" />
  </bpmn:process>
  <bpmn:message id="payer_message" name="payer_answers" />
</bpmn:definitions>
"""


@dataclass(frozen=True)
class TwoUnits:
    """An acute hospital case and a workers' comp case, each with an open review and a claimed call (both overdue)."""

    acute: int
    comp: int
    acute_review: int
    acute_call: int
    comp_review: int
    comp_call: int
    acute_incident: int
    comp_incident: int


def open_two_units(services, *, acute_worker: str, comp_worker: str) -> TwoUnits:
    """Deploy a process in each setting, open a case on each, make it stuck; each call is claimed by its worker."""
    ids = {}
    for unit, setting, pid, subject, ref, worker in (
            ("acute", "acute_hospital", ACUTE_PROCESS, ACUTE_NAME, ACUTE_MRN, acute_worker),
            ("comp", "workers_comp", COMP_PROCESS, COMP_NAME, COMP_CLAIM, comp_worker)):
        bpmn = UNIT_BPMN.replace("{pid}", pid).replace("{title}", pid.replace("_", " "))
        deployment.deploy_diagram_set(services, actor=None,
                                      diagram_set=catalog.DiagramSet(setting, {f"{pid}.bpmn": bpmn.encode()}))
        person = accounts.active_user(services, username=worker)
        case = handlers.start_case(services, actor=person, process_id=pid, subject_name=subject, subject_ref=ref)
        tasks = {task.element_id: task for task in handlers.get_case(services, case_id=case.id).open_tasks}
        handlers.claim_task(services, actor=person, task_id=tasks["call"].id)
        now = services.clock.now()
        with services.uow() as uow:
            for overdue in (uow.tasks.get(tasks["review"].id), uow.tasks.get(tasks["call"].id)):
                overdue.due_at = now - timedelta(hours=2)
                uow.tasks.update(overdue)
            incident = uow.incidents.add(Incident(case_id=case.id, kind="script", message="name 'x' is not defined",
                                                  created_at=now, element_id="review"))
            uow.commit()
        ids |= {unit: case.id, f"{unit}_review": tasks["review"].id, f"{unit}_call": tasks["call"].id,
                f"{unit}_incident": incident.id}
    run_stuck_scan(services, owner="test", every=timedelta(0), idle_days=30, timer_grace=timedelta(minutes=5))
    return TwoUnits(**ids)


@pytest.fixture
def units(services) -> TwoUnits:
    """wendy: a supervisor and case manager who covers workers' comp only; sue covers every setting."""
    accounts.add_user(services, username="wendy", roles=["supervisor", "case_manager"], settings=["workers_comp"])
    return open_two_units(services, acute_worker="sue", comp_worker="wendy")


def body(response) -> str:
    """A page's HTML without the CSRF tokens, which differ from one response to the next."""
    return re.sub(r'(name="csrf_token" value=|"csrf-token" content=)"[^"]*"', r"\1", response.get_data(as_text=True))


def flashes(visitor) -> str:
    page = visitor.get("/inbox").get_data(as_text=True)
    return html.unescape(page.split('<div class="flashes">')[1].split("</div>")[0]) if 'class="flashes"' in page else ""


def shows_no_acute_case(text: str, units: TwoUnits) -> bool:
    return ACUTE_NAME not in text and ACUTE_MRN not in text and f"/cases/{units.acute}\"" not in text


def listed(response) -> str:
    """What a list page lists: its table of rows, and the choices its filters offer (not what was typed)."""
    page = response.get_data(as_text=True)
    return "".join(re.findall(r'<table class="tasks.*?</table>|<option value="[^"]*"', page, re.S))


def acute_state(services, units: TwoUnits) -> tuple:
    """Everything a refused action could have changed on the acute case."""
    detail = handlers.get_case(services, case_id=units.acute)
    return (detail.case.status, detail.case.version, len(detail.events), detail.notes,
            [(t.id, t.status, t.assignee, t.draft) for t in detail.open_tasks],
            [(i.id, i.status) for i in detail.open_incidents])


class TestByIdTheOtherSettingsCaseDoesNotExist:
    @pytest.mark.parametrize("path", ["/cases/{case}", "/cases/{case}/diagram.bpmn", "/cases/{case}/diagram-marks.json",
                                      "/cases/{case}/diagram.bpmn?path=authz_acute_stay.bpmn", "/tasks/{task}"])
    def test_a_page_answers_exactly_as_for_an_id_that_does_not_exist(self, visitor, units, path):
        wendy, real = visitor("wendy"), {"case": units.acute, "task": units.acute_review}
        hidden = wendy.get(path.format(**real))
        missing = wendy.get(path.format(case=MISSING, task=MISSING))
        assert hidden.status_code == missing.status_code == 404
        assert body(hidden) == body(missing).replace(str(MISSING), str(real["case" if "case" in path else "task"]))
        assert "does not exist." in body(hidden) and shows_no_acute_case(body(hidden), units)
        assert visitor("sue").get(path.format(**real)).status_code == 200  # the case is there for who covers it

    @pytest.mark.parametrize("path, form, probe", [
        ("/cases/{case}/notes", {"text": "Peeking"}, "case"),
        ("/cases/{case}/tasks", {"title": "Peek", "who": "role:case_manager"}, "case"),
        ("/cases/{case}/suspend", {"reason": "Peeking"}, "case"),
        ("/cases/{case}/resume", {"reason": "Peeking"}, "case"),
        ("/cases/{case}/cancel", {"reason": "Peeking"}, "case"),
        ("/cases/{case}/move", {"move": "review>call", "reason": "Peeking"}, "case"),
        ("/cases/{case}/incidents/{incident}/retry", {"corrections": "x: 1"}, "incident"),
        ("/cases/{case}/incidents/{incident}/retry", {"action": "skip"}, "incident"),
        ("/cases/{case}/incidents/{incident}/close", {"reason": "Peeking"}, "incident"),
        ("/tasks/{task}", {"_action": "complete"}, "task"),
        ("/tasks/{task}", {"_action": "save"}, "task"),
        ("/tasks/{task}/claim", {}, "task"),
        ("/tasks/{call}/unclaim", {}, "call"),
        ("/tasks/{task}/assign", {"assignee": "wendy"}, "task"),
    ])
    def test_an_action_is_refused_exactly_as_for_an_id_that_does_not_exist_and_changes_nothing(
            self, visitor, services, units, path, form, probe):
        wendy, before = visitor("wendy"), acute_state(services, units)
        real = {"case": units.acute, "task": units.acute_review, "call": units.acute_call,
                "incident": units.acute_incident}
        hidden = wendy.post(path.format(**real), {**form, "back": "/inbox"})
        hidden_flash = flashes(wendy)
        missing = wendy.post(path.format(**(real | {probe: MISSING})), {**form, "back": "/inbox"})
        assert hidden.status_code == missing.status_code == 303
        assert hidden.headers["Location"] == missing.headers["Location"]
        assert "does not exist." in hidden_flash
        assert hidden_flash == flashes(wendy).replace(str(MISSING), str(real[probe]))
        assert acute_state(services, units) == before

    def test_a_bulk_reassignment_names_the_other_settings_task_as_not_existing(self, visitor, services, units):
        wendy, before = visitor("wendy"), acute_state(services, units)
        wendy.post("/stuck/reassign", {"task": [units.acute_review, MISSING, units.comp_review], "assignee": "wendy"})
        said = flashes(wendy)
        assert f"Task {units.acute_review} was not reassigned: Task {units.acute_review} does not exist." in said
        assert f"Task {MISSING} was not reassigned: Task {MISSING} does not exist." in said
        assert "1 task reassigned to wendy." in said and acute_state(services, units) == before

    def test_moving_the_other_settings_case_to_a_version_names_it_as_not_existing(self, visitor, services, units):
        wendy, before = visitor("wendy"), acute_state(services, units)
        for case_id in (units.acute, MISSING):
            response = wendy.post(f"/processes/{COMP_PROCESS}/migrate", {"to_version": "1", "case_id": str(case_id)})
            assert response.status_code == 303 and f"Case {case_id} does not exist." in flashes(wendy)
        assert acute_state(services, units) == before


class TestListsAndSearches:
    @pytest.mark.parametrize("query", [
        "", "view=team", "view=all", "view=all&q=Alice", f"view=all&q={ACUTE_MRN}", "view=all&q=acute-4711",
        "view=all&q=#{case}", "view=all&q={case}", "view=all&setting=acute_hospital", f"view=all&process={ACUTE_PROCESS}",
        "view=all&task=review", "view=all&due=overdue", "view=all&priority=3", "view=all&sort=created",
        "view=team&q=Alice", "view=mine&q=Alice",
    ])
    def test_no_inbox_view_filter_or_search_shows_the_other_settings_tasks(self, visitor, units, query):
        response = visitor("wendy").get(f"/inbox?{query.format(case=units.acute)}")
        assert response.status_code == 200
        titles = task_titles(response)
        assert not any("acute" in title for title in titles), titles
        assert shows_no_acute_case(listed(response), units) and "acute" not in listed(response)

    def test_the_count_badges_count_only_the_settings_the_user_covers(self, visitor, units):
        assert tab_counts(visitor("wendy").get("/inbox")) == {"My tasks": 1, "My team's queue": 1, "All open": 2}
        assert tab_counts(visitor("sue").get("/inbox")) == {"My tasks": 1, "My team's queue": 2, "All open": 4}
        assert "Review authz acute stay" in task_titles(visitor("sue").get("/inbox?view=all&q=Alice"))

    @pytest.mark.parametrize("query", ["", "setting=acute_hospital", f"process={ACUTE_PROCESS}", "assignee=sue",
                                       "reason=incident", "reason=task_overdue", "sort=case"])
    def test_the_stuck_list_and_its_csv_show_only_the_settings_the_user_covers(self, visitor, units, query):
        wendy = visitor("wendy")
        page = wendy.get(f"/stuck?{query}")
        rows = list(csv.DictReader(io.StringIO(wendy.get(f"/stuck.csv?{query}").get_data(as_text=True))))
        assert shows_no_acute_case(page.get_data(as_text=True), units) and "acute" not in listed(page)
        assert {row["setting"] for row in rows} <= {"workers_comp"}
        assert str(units.acute) not in {row["case"] for row in rows}
        if not query:
            assert {row["case"] for row in rows} == {str(units.comp)} and COMP_NAME in listed(page)
            sue_rows = csv.DictReader(io.StringIO(visitor("sue").get("/stuck.csv").get_data(as_text=True)))
            assert str(units.acute) in {row["case"] for row in sue_rows}

    def test_the_kpi_page_and_csv_show_only_the_settings_the_user_covers(self, visitor, units):
        wendy = visitor("wendy")
        for query in ("", "?setting=acute_hospital"):
            rows = list(csv.DictReader(io.StringIO(wendy.get(f"/kpis.csv{query}").get_data(as_text=True))))
            assert {row["setting"] for row in rows} <= {"workers_comp"}
            shown = re.findall(r'data-setting="([a-z_]+)"', wendy.get(f"/kpis{query}").get_data(as_text=True))
            assert set(shown) <= {"workers_comp"}
        assert "acute_hospital" in re.findall(r'data-setting="([a-z_]+)"', visitor("sue").get("/kpis").get_data(as_text=True))


class TestProcessViews:
    @pytest.mark.parametrize("path", ["/processes/{p}", "/processes/{p}/heat.json", "/processes/{p}/diagram.bpmn",
                                      "/processes/{p}/elements/review", "/processes/{p}/diff?from=1&to=1",
                                      "/processes/{p}/migrate"])
    def test_a_process_of_another_setting_answers_as_one_not_deployed(self, visitor, units, path):
        wendy = visitor("wendy")
        hidden, missing = wendy.get(path.format(p=ACUTE_PROCESS)), wendy.get(path.format(p="authz_never_deployed"))
        assert hidden.status_code == missing.status_code == 404
        assert body(hidden) == body(missing).replace("authz_never_deployed", ACUTE_PROCESS)
        assert f"No process '{ACUTE_PROCESS}' is deployed." in html.unescape(body(hidden))

    def test_the_process_list_and_heat_map_count_only_the_settings_cases(self, visitor, units):
        wendy = visitor("wendy")
        listing = wendy.get("/processes").get_data(as_text=True)
        assert f'data-process-id="{COMP_PROCESS}"' in listing and ACUTE_PROCESS not in listing
        heat = wendy.get(f"/processes/{COMP_PROCESS}/heat.json").json
        assert {e["element_id"]: e["cases"] for e in heat["elements"]} == {"review": 1, "call": 1, "payer_answers": 1}
        waiting = wendy.get(f"/processes/{COMP_PROCESS}/elements/review").get_data(as_text=True)
        assert COMP_NAME in waiting and shows_no_acute_case(waiting, units)
