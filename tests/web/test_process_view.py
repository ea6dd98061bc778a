"""The process view for managers: where a process's running cases wait, per element, and which (both databases)."""
from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from workflows import accounts, catalog, deployment, handlers
from workflows.errors import EngineFailure

from .conftest import NOW

DIAGRAMS = Path(__file__).resolve().parents[1] / "data" / "diagrams"
REVIEW = "acute_utilization_review"
CRITERIA_MET = {"status_recommendation": "inpatient", "criteria_met": True, "expected_midnights": 3}


def deploy(services, folder: str, *, edited: bool = False) -> None:
    diagram_set = catalog.read_diagram_set(DIAGRAMS / folder, name="acute_hospital")
    if edited:  # a new version: the same diagrams, one byte apart
        diagram_set = catalog.DiagramSet(diagram_set.name, {
            path: content + (b"\n" if path.endswith(".bpmn") else b"") for path, content in diagram_set.files.items()})
    deployment.deploy_diagram_set(services, diagram_set=diagram_set, library=catalog.find_diagram_sets(DIAGRAMS),
                                  actor=None)


def start(services, name: str, process_id: str = REVIEW, **data) -> int:
    carla = accounts.active_user(services, username="carla")
    return handlers.start_case(services, actor=carla, process_id=process_id, data=data, subject_name=name,
                               subject_ref=f"MRN-{name[:3].upper()}").id


def open_task(services, case_id: int):
    [task] = handlers.get_case(services, case_id=case_id).open_tasks
    return task


@pytest.fixture
def reviews(services) -> dict[str, int]:
    """Ada, Bo and Cy wait at the admission review (Bo's since 3 days, Cy's overdue); Dee's failed at the next script."""
    deploy(services, "utilization_review")
    cases = {name: start(services, name) for name in ("Ada", "Bo", "Cy")}
    with services.uow() as uow:
        uow.tasks.update(replace(open_task(services, cases["Cy"]), due_at=NOW - timedelta(hours=2)))
        uow.tasks.update(replace(open_task(services, cases["Bo"]), created_at=NOW - timedelta(days=3)))
        uow.commit()
    cases["Dee"] = start(services, "Dee", payer_next_review_date="not a date")
    carla = accounts.active_user(services, username="carla")
    task = open_task(services, cases["Dee"])
    handlers.claim_task(services, actor=carla, task_id=task.id)
    with pytest.raises(EngineFailure):
        handlers.complete_task(services, actor=carla, task_id=task.id, data=CRITERIA_MET)
    return cases


def loads(response) -> dict[str, tuple[int, int, int]]:
    """The table of the process view: element id -> (cases, overdue tasks, open incidents)."""
    page = response.get_data(as_text=True)
    rows = re.findall(r'<tr data-element-id="([^"]+)">(.*?)</tr>', page, re.S)
    return {element_id: tuple(int(re.search(rf"data-{name}>(?:<span[^>]*>)?(\d+)", row).group(1))
                              for name in ("cases", "overdue", "incidents"))
            for element_id, row in rows}


def listed_cases(response) -> list[int]:
    return [int(case_id) for case_id in re.findall(r'<tr data-case-id="(\d+)"', response.get_data(as_text=True))]


def text_of(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


class TestCountsPerElement:
    def test_each_element_shows_its_waiting_cases_overdue_tasks_and_open_incidents(self, visitor, reviews):
        response = visitor("sue").get(f"/processes/{REVIEW}")
        assert response.status_code == 200
        assert loads(response) == {
            "admission_review": (4, 1, 0),  # Dee's review stays open: the failed completion was rolled back
            "schedule_next_review": (1, 0, 1),
        }
        assert list(loads(response))[0] == "admission_review", "the busiest step first"

    def test_the_json_for_the_diagram_holds_the_same_counts_with_a_link_to_each_list(self, visitor, reviews):
        heat = visitor("sue").get(f"/processes/{REVIEW}/heat.json").json
        assert (heat["process_id"], heat["version"], heat["diagram"]) == (REVIEW, 1, "utilization_review.bpmn")
        by_id = {element["element_id"]: element for element in heat["elements"]}
        assert by_id["schedule_next_review"] == {
            "element_id": "schedule_next_review", "name": "Schedule next review", "cases": 1, "overdue_tasks": 0,
            "open_incidents": 1, "inside": [], "url": f"/processes/{REVIEW}/elements/schedule_next_review?version=1"}
        assert by_id["admission_review"]["cases"] == 4

    def test_the_page_holds_the_diagram_viewer_its_legend_and_the_nav_link(self, visitor, reviews):
        page = visitor("sue").get(f"/processes/{REVIEW}").get_data(as_text=True)
        assert f'data-diagram-url="/processes/{REVIEW}/diagram.bpmn?version=1"' in page
        assert f'data-marks-url="/processes/{REVIEW}/heat.json?version=1"' in page
        assert 'data-painter="process-heat"' in page and 'id="heat-legend"' in page
        assert '<a href="/processes">Processes</a>' in page

    def test_closed_cases_are_not_counted_and_cases_on_hold_are(self, visitor, services, reviews):
        sue = accounts.active_user(services, username="sue")
        handlers.cancel_case(services, actor=sue, case_id=reviews["Ada"], reason="Transferred out")
        handlers.suspend_case(services, actor=sue, case_id=reviews["Bo"], reason="In ICU elsewhere")
        response = visitor("sue").get(f"/processes/{REVIEW}")
        assert loads(response)["admission_review"] == (3, 1, 0)
        element = visitor("sue").get(f"/processes/{REVIEW}/elements/admission_review")
        assert reviews["Ada"] not in listed_cases(element) and reviews["Bo"] in listed_cases(element)
        assert re.search(rf'data-case-id="{reviews["Bo"]}".*?On hold</span>', element.get_data(as_text=True), re.S)

    def test_a_boundary_timer_counts_on_the_task_it_sits_on(self, visitor, services):
        deploy(services, "intake")
        case_id = start(services, "Eve", process_id="intake")
        assert [timer.element_id for timer in handlers.get_case(services, case_id=case_id).pending_timers] == [
            "intake_overdue"]
        assert loads(visitor("sue").get("/processes/intake")) == {"record_intake": (1, 0, 0)}


class TestCallActivities:
    def test_a_case_inside_a_called_diagram_counts_on_the_call_activity_and_on_its_own_view(self, visitor, services):
        deploy(services, "referral")
        case_id = start(services, "Fay", process_id="referral")
        sue = visitor("sue")
        main = sue.get("/processes/referral")
        assert loads(main) == {"follow_up_call": (1, 0, 0)}
        assert "with the cases inside common/follow_up.bpmn" in text_of(main)
        assert '<a href="/processes/referral?version=1&amp;diagram=common/follow_up.bpmn#diagram-title"' in \
            main.get_data(as_text=True)
        assert loads(sue.get("/processes/referral?diagram=common/follow_up.bpmn")) == {"call_patient": (1, 0, 0)}
        assert listed_cases(sue.get("/processes/referral/elements/follow_up_call")) == [case_id]
        assert listed_cases(sue.get("/processes/referral/elements/call_patient?diagram=common/follow_up.bpmn")) == [case_id]


class TestTheCasesAtAnElement:
    def test_the_list_shows_each_case_longest_waiting_first_then_soonest_due_with_its_flags(self, visitor, reviews):
        response = visitor("sue").get(f"/processes/{REVIEW}/elements/admission_review")
        assert response.status_code == 200
        # Bo's review opened 3 days ago; the others opened at the same moment, Cy's due (overdue) soonest.
        assert listed_cases(response) == [reviews[name] for name in ("Bo", "Cy", "Ada", "Dee")]
        page = response.get_data(as_text=True)
        assert f'<a href="/cases/{reviews["Ada"]}">Ada</a> <span class="ref">MRN-ADA</span>' in page
        assert re.search(rf'data-case-id="{reviews["Cy"]}".*?Overdue</span>', page, re.S)
        assert re.search(rf'data-case-id="{reviews["Dee"]}"[^>]*>.*?carla', page, re.S), "the claimed task's assignee"
        assert "4 running cases waiting here" in text_of(response)

    def test_a_script_with_an_incident_lists_its_case_flagged(self, visitor, reviews):
        response = visitor("sue").get(f"/processes/{REVIEW}/elements/schedule_next_review")
        assert listed_cases(response) == [reviews["Dee"]]
        assert re.search(r"Incident</span>", response.get_data(as_text=True))

    def test_the_list_is_paged(self, visitor, reviews, monkeypatch):
        monkeypatch.setattr("service.web.process_view.PAGE_SIZE", 3)
        sue = visitor("sue")
        first, second = (sue.get(f"/processes/{REVIEW}/elements/admission_review?page={n}") for n in (1, 2))
        assert listed_cases(first) + listed_cases(second) == [reviews[name] for name in ("Bo", "Cy", "Ada", "Dee")]
        assert 'rel="next"' in first.get_data(as_text=True) and "Page 2 of 2" in text_of(second)


class TestVersions:
    def test_the_latest_version_is_shown_and_an_older_one_with_running_cases_can_be_chosen(self, visitor, services,
                                                                                          reviews):
        deploy(services, "utilization_review", edited=True)
        sue = visitor("sue")
        latest = sue.get(f"/processes/{REVIEW}")
        assert loads(latest) == {} and "No running case waits in this diagram." in text_of(latest)
        assert re.search(r'<option value="1">Version 1 · 4 running</option>', latest.get_data(as_text=True))
        assert loads(sue.get(f"/processes/{REVIEW}?version=1"))["admission_review"] == (4, 1, 0)
        listing = sue.get("/processes").get_data(as_text=True)
        assert "Version 2</a> (latest)" in listing and "Version 1</a>" in listing


class TestWhoMaySee:
    @pytest.mark.parametrize("path", ["/processes", f"/processes/{REVIEW}", f"/processes/{REVIEW}/heat.json",
                                      f"/processes/{REVIEW}/diagram.bpmn", f"/processes/{REVIEW}/elements/admission_review"])
    def test_a_case_manager_gets_403(self, visitor, reviews, path):
        response = visitor("carla").get(path)
        assert response.status_code == 403
        assert "Only supervisors and managers see the process view." in text_of(response)

    def test_a_case_manager_has_no_link_to_it(self, visitor, reviews):
        assert 'href="/processes"' not in visitor("carla").get("/inbox").get_data(as_text=True)

    def test_a_supervisor_sees_only_the_processes_of_settings_they_cover(self, visitor, services, reviews):
        accounts.add_user(services, username="wendy", roles=["supervisor"], settings=["workers_comp"])
        wendy = visitor("wendy")
        assert f'data-process-id="{REVIEW}"' not in wendy.get("/processes").get_data(as_text=True)
        for path in (f"/processes/{REVIEW}", f"/processes/{REVIEW}/elements/admission_review"):
            response = wendy.get(path)
            assert response.status_code == 404
            assert f"No process '{REVIEW}' is deployed." in text_of(response)
        listing = visitor("sue").get("/processes").get_data(as_text=True)
        assert re.search(rf'data-process-id="{REVIEW}">.*?data-running-cases>4<', listing, re.S)


class TestWrongAddresses:
    @pytest.mark.parametrize("path, message", [
        ("/processes/no_such_process", "No process 'no_such_process' is deployed."),
        (f"/processes/{REVIEW}?version=7", f"The process {REVIEW} has no version 7; its versions are 1."),
        (f"/processes/{REVIEW}/elements/no_such_step",
         f"The diagram utilization_review.bpmn of process {REVIEW} (version 1) has no element 'no_such_step'."),
        (f"/processes/{REVIEW}?diagram=forms/admission_review.schema.json",
         f"Version 1 of the process {REVIEW} has no diagram file 'forms/admission_review.schema.json'."),
    ])
    def test_an_unknown_process_version_element_or_diagram_is_404_naming_it(self, visitor, reviews, path, message):
        response = visitor("sue").get(path)
        assert response.status_code == 404 and message in text_of(response)

    def test_a_version_that_is_not_a_number_is_400(self, visitor, reviews):
        response = visitor("sue").get(f"/processes/{REVIEW}?version=latest")
        assert response.status_code == 400 and "Give a whole number from 1, e.g. 2, not 'latest'." in text_of(response)


class TestApi:
    @pytest.fixture
    def api(self, app, services):
        _, manager = accounts.add_user(services, username="maya", roles=["supervisor"])
        _, worker = accounts.add_user(services, username="cal", roles=["case_manager"])
        client = app.test_client()

        def call(path: str, token: str = manager):
            return client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {token}"})
        call.worker = worker
        return call

    def test_the_heatmap_holds_the_counts_per_element(self, api, reviews):
        body = api(f"/processes/{REVIEW}/heatmap").json
        assert (body["process_id"], body["version"], body["diagram"]) == (REVIEW, 1, "utilization_review.bpmn")
        assert {(e["element_id"], e["cases"], e["overdue_tasks"], e["open_incidents"]) for e in body["elements"]} == {
            ("admission_review", 4, 1, 0), ("schedule_next_review", 1, 0, 1)}
        assert body["versions"][0]["running_cases"] == 4 and body["unplaced"] == []

    def test_the_cases_at_an_element_are_paged(self, api, reviews):
        body = api(f"/processes/{REVIEW}/elements/admission_review/cases?limit=2&offset=2").json
        assert (body["total"], body["limit"], body["offset"]) == (4, 2, 2)
        assert [item["case_id"] for item in body["items"]] == [reviews["Ada"], reviews["Dee"]]
        [cy] = api(f"/processes/{REVIEW}/elements/admission_review/cases?limit=1&offset=1").json["items"]
        assert (cy["subject_name"], cy["overdue"], cy["incident"], cy["status"]) == ("Cy", True, False, "active")

    def test_a_case_manager_is_refused_and_unknown_names_are_404(self, api, reviews):
        assert api(f"/processes/{REVIEW}/heatmap", api.worker).status_code == 403
        missing = api(f"/processes/{REVIEW}/elements/nowhere/cases")
        assert missing.status_code == 404 and "has no element 'nowhere'" in missing.json["error"]["message"]
        assert api(f"/processes/{REVIEW}/heatmap?version=3").status_code == 404
        assert api(f"/processes/{REVIEW}/heatmap?version=x").status_code == 400

    def test_both_routes_are_in_the_openapi_document(self, api):
        paths = api("/openapi.json").json["paths"]
        assert "/api/v1/processes/{process_id}/heatmap" in paths
        assert "/api/v1/processes/{process_id}/elements/{element_id}/cases" in paths
