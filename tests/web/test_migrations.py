"""What a new version of the acute stay changes, and moving running cases onto it: pages and API (both databases).

Version 2 of bpmn/acute_hospital, as a designer would deploy it: the admission review is
due in 12 hours and gets a second look after it, the GMLOS review is triggered a day
earlier (a changed timer), and the GMLOS review task itself is gone.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from workflows import accounts, catalog, deployment, handlers
from workflows.model import CaseStatus, TimerStatus

BPMN = Path(__file__).resolve().parents[2] / "bpmn"
PROCESS = "acute_stay"
STAY = "acute_stay.bpmn"
CRITERIA_MET = {"status_recommendation": "inpatient", "criteria_met": True, "expected_midnights": 3}
SECOND_LOOK = (
    '<bpmn:userTask id="admission_second_look" name="Second look at the admission">'
    '<bpmn:incoming>flow_admission_review_to_merge</bpmn:incoming><bpmn:outgoing>flow_second_look_to_merge</bpmn:outgoing>'
    '</bpmn:userTask>\n      <bpmn:exclusiveGateway id="review_merge">'
)
NEW_INSTRUCTIONS = "Review the order against InterQual within 12 hours; a colleague takes a second look."
VERSION_2 = [
    ('Review the order, payer and working diagnosis against your criteria set (InterQual/MCG). Recommend inpatient, '
     'observation or outpatient status, record whether the criteria are met and the number of midnights the attending '
     'expects (two-midnight rule for Medicare).', NEW_INSTRUCTIONS),
    ('<spiffworkflow:property name="dueIn" value="admission_review_due" />',
     '<spiffworkflow:property name="dueIn" value="PT12H" />'),
    ('<bpmn:exclusiveGateway id="review_merge">', SECOND_LOOK),
    ('<bpmn:incoming>flow_admission_review_to_merge</bpmn:incoming>\n        <bpmn:incoming>flow_next_review</bpmn:incoming>',
     '<bpmn:incoming>flow_second_look_to_merge</bpmn:incoming>\n        <bpmn:incoming>flow_next_review</bpmn:incoming>'),
    ('sourceRef="admission_review" targetRef="review_merge" />',
     'sourceRef="admission_review" targetRef="admission_second_look" />'
     '<bpmn:sequenceFlow id="flow_second_look_to_merge" sourceRef="admission_second_look" targetRef="review_merge" />'),
    ('<bpmn:flowNodeRef>admission_review</bpmn:flowNodeRef>',
     '<bpmn:flowNodeRef>admission_review</bpmn:flowNodeRef><bpmn:flowNodeRef>admission_second_look</bpmn:flowNodeRef>'),
    ('<bpmn:timeDate xsi:type="bpmn:tFormalExpression">gmlos_review_at</bpmn:timeDate>',
     '<bpmn:timeDate xsi:type="bpmn:tFormalExpression">(parse_datetime(gmlos_review_at) - timedelta(days=1)).isoformat()'
     '</bpmn:timeDate>'),
    ('targetRef="gmlos_review" />', 'targetRef="gmlos_review_done" />'),
    ('<bpmn:incoming>flow_gmlos_review_to_end</bpmn:incoming>', '<bpmn:incoming>flow_gmlos_reached_to_review</bpmn:incoming>'),
    ('<bpmn:flowNodeRef>gmlos_review</bpmn:flowNodeRef>', ''),
]
GONE = [r'<bpmn:userTask id="gmlos_review" .*?</bpmn:userTask>', r'<bpmn:sequenceFlow id="flow_gmlos_review_to_end"[^>]*/>',
        r'<bpmndi:BPMNShape id="gmlos_review_di".*?</bpmndi:BPMNShape>',
        r'<bpmndi:BPMNEdge id="flow_gmlos_review_to_end_di".*?</bpmndi:BPMNEdge>']
START = {"patient_name": "?", "mrn": "?", "order_type": "inpatient", "order_at": "2026-03-03T11:00:00-05:00",
         "payer_name": "Northwind Health PPO", "payer_type": "commercial", "working_diagnosis": "Cellulitis",
         "working_drg": "603"}


def version_2(files: dict[str, bytes]) -> dict[str, bytes]:
    text = files[STAY].decode()
    for old, new in VERSION_2:
        assert old in text, old
        text = text.replace(old, new)
    for pattern in GONE:
        text, found = re.subn(pattern, "", text, flags=re.S)
        assert found == 1, pattern
    return {**files, STAY: text.encode()}


def deploy(services, files: dict[str, bytes], actor=None) -> None:
    deployment.deploy_diagram_set(services, diagram_set=catalog.DiagramSet("acute_hospital", files),
                                  library=catalog.find_diagram_sets(BPMN), actor=actor)


def user(services, name: str):
    return accounts.active_user(services, username=name)


@pytest.fixture
def cases(services) -> dict[str, int]:
    """Version 1 running: Ada (at her admission review, claimed by Carla), Bo (Medicare observation, on hold,
    his 24-hour timer paused) and Cy (waiting for the GMLOS timer); then version 2 deployed by Dana."""
    files = dict(catalog.read_diagram_set(BPMN / "acute_hospital").files)
    deploy(services, files)
    carla = user(services, "carla")

    def start(name: str, **data) -> int:
        return handlers.start_case(services, actor=carla, process_id=PROCESS, subject_name=name,
                                   subject_ref=f"MRN-{name.upper()}", data={**START, "patient_name": name, **data}).id
    found = {"Ada": start("Ada"), "Bo": start("Bo", order_type="observation", payer_type="medicare"),
             "Cy": start("Cy", gmlos_days=4)}
    handlers.claim_task(services, actor=carla, task_id=review_task(services, found["Ada"]).id)
    handlers.suspend_case(services, actor=user(services, "sue"), case_id=found["Bo"], reason="In surgery elsewhere")
    dana, _ = accounts.add_user(services, username="dana", roles=["designer"], display_name="Dana")
    deploy(services, version_2(files), actor=dana)
    return found


def review_task(services, case_id: int):
    return next(t for t in handlers.get_case(services, case_id=case_id).open_tasks if t.element_id == "admission_review")


def text_of(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


def row(response, marker: str) -> str:
    found = re.search(rf"<tr {marker}[^>]*>(.*?)</tr>", response.get_data(as_text=True), re.S)
    assert found, marker
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))).strip()


def preview_form(response) -> dict:
    """The migrate form as the page fills it in: its version fields and the cases ticked."""
    page = response.get_data(as_text=True)
    fields = dict(re.findall(r'<input type="hidden" name="(version_\d+|to_version)" value="(\d+)"', page))
    ticked = re.findall(r'name="case_id" value="(\d+)"[^>]*checked', page)
    return {**fields, "case_id": ticked}


def version_of(services, case_id: int) -> int:
    case = handlers.get_case(services, case_id=case_id).case
    with services.uow(read_only=True) as uow:
        return uow.processes.get(case.process_version_id).version


class TestTheDiffPage:
    def test_it_lists_what_version_2_changes_adds_and_removes_with_who_deployed_each_version(self, visitor, cases):
        response = visitor("dana").get(f"/processes/{PROCESS}/diff")
        assert response.status_code == 200
        assert "Version 1 deployed by system" in text_of(response) and "version 2 deployed by dana" in text_of(response)
        assert "4 changed, 1 added, 1 removed." in text_of(response)
        assert row(response, 'data-element-id="admission_review"') == (
            "Admission status review admission_review user task stay_reviews acute_stay.bpmn instructions, due rule, outgoing flows")
        assert row(response, 'data-element-id="gmlos_reached"') == (
            "Order + GMLOS gmlos_reached timer event stay_reviews acute_stay.bpmn timer, outgoing flows")
        assert row(response, 'data-element-id="admission_second_look"') == (
            "Second look at the admission admission_second_look user task stay_reviews acute_stay.bpmn")
        assert row(response, 'data-element-id="gmlos_review"').startswith("Review the stay at GMLOS gmlos_review")
        assert "Move running cases to version 2" not in text_of(response), "designers do not move cases"

    def test_chosen_versions_and_bad_ones_each_get_a_clear_answer(self, visitor, cases):
        sue = visitor("sue")
        backwards = sue.get(f"/processes/{PROCESS}/diff?from=2&to=1")
        assert "version 2 → version 1" in text_of(backwards) and "1 changed" not in text_of(backwards)
        assert sue.get(f"/processes/{PROCESS}/diff").status_code == 200
        assert "Move running cases to version 2" in text_of(sue.get(f"/processes/{PROCESS}/diff"))
        wrong = sue.get(f"/processes/{PROCESS}/diff?from=two")
        assert wrong.status_code == 400 and "from: Give a version number such as 2, not 'two'." in text_of(wrong)
        missing = sue.get(f"/processes/{PROCESS}/diff?from=7")
        assert missing.status_code == 404
        assert "The process acute_stay has no version 7 ('from'); its versions are 1, 2." in text_of(missing)
        assert sue.get("/processes/no_such_process/diff").status_code == 404
        assert visitor("carla").get(f"/processes/{PROCESS}/diff").status_code == 403

    def test_the_processes_list_links_to_both_pages(self, visitor, cases):
        page = visitor("sue").get("/processes").get_data(as_text=True)
        assert f'href="/processes/{PROCESS}/diff"' in page and f'href="/processes/{PROCESS}/migrate"' in page


class TestMovingCases:
    def test_the_preview_ticks_the_cases_that_can_move_and_gives_the_reason_for_the_one_that_cannot(self, visitor, cases):
        response = visitor("sue").get(f"/processes/{PROCESS}/migrate")
        assert response.status_code == 200
        assert sorted(preview_form(response)["case_id"]) == sorted(str(cases[n]) for n in ("Ada", "Bo"))
        assert "Changes at its current steps: Admission status review (instructions, due rule, outgoing flows)" in row(
            response, f'data-case-id="{cases["Ada"]}"')
        assert "On hold" in row(response, f'data-case-id="{cases["Bo"]}"')
        assert ("No: The case is waiting at the timer 'Order + GMLOS' (gmlos_reached), whose timer version 2 changes; "
                "the running timer cannot take the new definition: move the token or let the timer fire first."
                ) in row(response, f'data-case-id="{cases["Cy"]}"')
        assert f'href="/cases/{cases["Cy"]}"' in response.get_data(as_text=True)

    def test_two_cases_move_and_the_third_is_refused_with_its_reason(self, visitor, services, cases):
        sue = visitor("sue")
        form = preview_form(sue.get(f"/processes/{PROCESS}/migrate"))
        ada_task, cy_before = review_task(services, cases["Ada"]), handlers.get_case(services, case_id=cases["Cy"])
        response = sue.post(f"/processes/{PROCESS}/migrate", {**form, "case_id": [str(cases[n]) for n in ("Ada", "Bo", "Cy")]})
        assert response.status_code == 200
        results = text_of(response).replace(" :", ":")
        assert f"Case {cases['Ada']}: migrated to version 2" in results
        assert f"Case {cases['Bo']}: migrated to version 2" in results
        assert f"Case {cases['Cy']}: refused: The case is waiting at the timer 'Order + GMLOS'" in results
        assert [version_of(services, cases[n]) for n in ("Ada", "Bo", "Cy")] == [2, 2, 1]
        cy_after = handlers.get_case(services, case_id=cases["Cy"])
        assert (cy_after.case.version, cy_after.case.state) == (cy_before.case.version, cy_before.case.state), "untouched"
        [attempt] = cy_after.events[len(cy_before.events):]
        assert (attempt.kind, attempt.actor, attempt.payload["to_version"]) == ("case_migration_refused", "sue", 2)
        assert attempt.payload["reason"].startswith("The case is waiting at the timer 'Order + GMLOS'")
        page = text_of(sue.get(f"/cases/{cases['Cy']}"))
        assert "tried to move the case to version 2, which was refused: The case is waiting at the timer" in page
        # Ada's review opened under the old rule: same task, same assignee, same due time; it reads as version 2 draws it.
        moved = review_task(services, cases["Ada"])
        assert (moved.id, moved.task_ref, moved.assignee, moved.due_at) == (
            ada_task.id, ada_task.task_ref, "carla", ada_task.due_at)
        assert (ada_task.instructions != NEW_INSTRUCTIONS, moved.instructions) == (True, NEW_INSTRUCTIONS)
        # Bo is still on hold: his 24-hour timer stays paused at its due time.
        bo = handlers.get_case(services, case_id=cases["Bo"])
        assert bo.case.status == CaseStatus.SUSPENDED
        assert [(t.element_id, t.status) for t in bo.pending_timers] == [("observation_24_hours", TimerStatus.PAUSED)]
        with services.uow(read_only=True) as uow:
            assert len(uow.timers.for_case(cases["Bo"], pending_only=False)) == 1, "no second row for the same timer"

    def test_the_case_page_shows_the_move_and_the_case_goes_on_along_version_2(self, visitor, services, cases):
        sue = visitor("sue")
        sue.post(f"/processes/{PROCESS}/migrate", {**preview_form(sue.get(f"/processes/{PROCESS}/migrate")),
                                                   "case_id": [str(cases["Ada"])]})
        page = text_of(visitor("carla").get(f"/cases/{cases['Ada']}"))
        assert ("sue moved the case from version 1 to version 2: changed at its current steps: "
                "Admission status review (instructions, due rule, outgoing flows)") in page
        [event] = [e for e in handlers.get_case(services, case_id=cases["Ada"]).events if e.kind == "case_migrated"]
        assert (event.actor, event.payload["from_version"], event.payload["to_version"]) == ("sue", 1, 2)
        assert event.payload["to_process_version_id"] != event.payload["from_process_version_id"]

        handlers.complete_task(services, actor=user(services, "carla"), task_id=review_task(services, cases["Ada"]).id,
                               data=CRITERIA_MET)
        titles = [t.title for t in handlers.get_case(services, case_id=cases["Ada"]).open_tasks]
        assert "Second look at the admission" in titles, "the step version 2 added comes next"

    def test_a_case_worked_after_the_preview_is_refused_and_left_as_it_is(self, visitor, services, cases):
        sue = visitor("sue")
        form = preview_form(sue.get(f"/processes/{PROCESS}/migrate"))
        handlers.complete_task(services, actor=user(services, "carla"), task_id=review_task(services, cases["Ada"]).id,
                               data=CRITERIA_MET)
        response = sue.post(f"/processes/{PROCESS}/migrate", {**form, "case_id": [str(cases["Ada"])]})
        assert (f"Case {cases['Ada']}: refused: Case {cases['Ada']} changed after it was previewed "
                "(someone worked it meanwhile); preview again before moving it.") in text_of(response).replace(" :", ":")
        assert version_of(services, cases["Ada"]) == 1

    def test_case_managers_may_not_move_cases_and_nothing_chosen_is_refused(self, visitor, services, cases):
        assert visitor("carla").get(f"/processes/{PROCESS}/migrate").status_code == 403
        carla = visitor("carla")
        carla.get("/inbox")
        refused = carla.post(f"/processes/{PROCESS}/migrate", {"to_version": "2", "case_id": [str(cases["Ada"])]})
        assert refused.status_code == 303 and version_of(services, cases["Ada"]) == 1
        sue = visitor("sue")
        empty = sue.post(f"/processes/{PROCESS}/migrate", {"to_version": "2", "back": f"/processes/{PROCESS}/migrate"},
                         follow_redirects=True)
        assert "Choose at least one case to move." in text_of(empty)
        assert sue.get(f"/processes/{PROCESS}/migrate?to=9").status_code == 404


class TestTheApi:
    @pytest.fixture
    def tokens(self, services) -> dict[str, str]:
        return {"sid": accounts.add_user(services, username="sid", roles=["supervisor"], settings=["acute_hospital"])[1],
                "cam": accounts.add_user(services, username="cam", roles=["case_manager"])[1],
                "dot": accounts.add_user(services, username="dot", roles=["designer"])[1]}

    def call(self, app, method, path, token, body=None):
        return app.test_client().open(f"/api/v1{path}", method=method, json=body,
                                      headers={"Authorization": f"Bearer {token}"})

    def test_diff_preview_and_moving_cases(self, app, services, cases, tokens):
        diff = self.call(app, "GET", f"/processes/{PROCESS}/diff?from=1&to=2", tokens["dot"]).json
        assert (diff["from"]["version"], diff["to"]["version"], diff["summary"]) == (1, 2, "4 changed, 1 added, 1 removed")
        changed = {c["element_id"]: c["changes"] for c in diff["changed"]}
        assert changed["admission_review"] == ["instructions", "due rule", "outgoing flows"]
        assert [c["element_id"] for c in diff["removed"]] == ["gmlos_review"]

        preview = self.call(app, "GET", f"/processes/{PROCESS}/migrations", tokens["sid"]).json
        assert preview["to_version"] == 2
        outcome = {item["case_id"]: (item["can_migrate"], item["reason"]) for item in preview["items"]}
        assert outcome[cases["Ada"]] == (True, None) and outcome[cases["Cy"]][0] is False

        moved = self.call(app, "POST", f"/processes/{PROCESS}/migrations", tokens["sid"],
                          {"case_ids": [cases["Ada"], cases["Cy"]], "to_version": 2})
        assert moved.status_code == 200
        results = {item["case_id"]: item for item in moved.json["items"]}
        assert (results[cases["Ada"]]["migrated"], results[cases["Ada"]]["from_version"]) == (True, 1)
        assert results[cases["Cy"]]["migrated"] is False
        assert "let the timer fire first" in results[cases["Cy"]]["reason"]
        again = self.call(app, "GET", f"/processes/{PROCESS}/migrations", tokens["sid"]).json
        assert cases["Ada"] not in {item["case_id"] for item in again["items"]}

    def test_refusals_say_what_is_wrong_and_move_nothing(self, app, services, cases, tokens):
        ada = {"case_ids": [cases["Ada"]], "to_version": 2}
        assert self.call(app, "POST", f"/processes/{PROCESS}/migrations", tokens["cam"], ada).status_code == 403
        assert self.call(app, "GET", f"/processes/{PROCESS}/migrations", tokens["dot"]).status_code == 403
        assert self.call(app, "POST", "/processes/no_such_process/migrations", tokens["sid"], ada).status_code == 404
        unknown_version = self.call(app, "POST", f"/processes/{PROCESS}/migrations", tokens["sid"],
                                    {**ada, "to_version": 9})
        assert unknown_version.status_code == 404 and "has no version 9" in unknown_version.json["error"]["message"]
        unknown_case = self.call(app, "POST", f"/processes/{PROCESS}/migrations", tokens["sid"],
                                 {"case_ids": [cases["Ada"], 999999], "to_version": 2})
        assert unknown_case.status_code == 404 and unknown_case.json["error"]["message"] == "Case 999999 does not exist."
        bad = self.call(app, "POST", f"/processes/{PROCESS}/migrations", tokens["sid"], {"case_ids": "all", "to": 2})
        assert bad.status_code == 400 and set(bad.json["error"]["field_errors"]) == {"case_ids", "to", "to_version"}
        assert self.call(app, "GET", f"/processes/{PROCESS}/diff?from=x", tokens["dot"]).status_code == 400
        assert version_of(services, cases["Ada"]) == 1

    def test_the_openapi_document_describes_the_routes(self, app, tokens):
        paths = app.test_client().get("/api/v1/openapi.json").json["paths"]
        assert {"get", "post"} <= set(paths["/api/v1/processes/{process_id}/migrations"])
        assert "get" in paths["/api/v1/processes/{process_id}/diff"]
