"""Reads of a case are audited: pages and API calls that show a case record who, how and what; refusals record nothing."""
from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select

from service.persistence import tables as t
from workflows import accounts, catalog, deployment, handlers
from workflows.handlers.scan import run_stuck_scan

from .conftest import NOW

REPO = Path(__file__).resolve().parents[2]
UTILIZATION_REVIEW = REPO / "tests" / "data" / "diagrams" / "utilization_review"


@pytest.fixture
def case_id(services) -> int:
    """Maria Gonzalez's utilization review, waiting at its admission review (a case manager's task)."""
    diagram_set = catalog.read_diagram_set(UTILIZATION_REVIEW, name="acute_hospital")
    deployment.deploy_diagram_set(services, diagram_set=diagram_set, actor=None)
    carla = accounts.active_user(services, username="carla")
    return handlers.start_case(services, actor=carla, process_id="acute_utilization_review",
                               subject_name="Maria Gonzalez", subject_ref="MRN-1").id


@pytest.fixture
def api(app, services):
    """GET the API as a user, with a fresh token of theirs."""
    def get(username: str, path: str):
        token = accounts.new_token(services, username=username)
        return app.test_client().get(path, headers={"Authorization": f"Bearer {token}"})
    return get


def reads(services) -> list[tuple]:
    """Every recorded read: (case, at, actor, channel, what), oldest first."""
    read = t.case_read.c
    with services.uow(read_only=True) as uow:
        rows = uow.connection.execute(select(read.case_id, read.at, read.actor, read.channel, read.what).order_by(read.id))
        return [tuple(row) for row in rows]


def admission_review(services, case_id) -> int:
    return handlers.get_case(services, case_id=case_id).open_tasks[0].id


class TestPagesRecordTheirReads:
    def test_the_case_page_records_who_saw_it_when(self, visitor, services, case_id):
        assert visitor("carla").get(f"/cases/{case_id}").status_code == 200
        assert reads(services) == [(case_id, NOW, "carla", "page", "case page")]

    def test_each_visit_is_a_read_of_its_own(self, visitor, services, case_id):
        carla = visitor("carla")
        carla.get(f"/cases/{case_id}")
        carla.get(f"/cases/{case_id}")
        visitor("sue").get(f"/cases/{case_id}")
        assert [actor for _, _, actor, _, _ in reads(services)] == ["carla", "carla", "sue"]

    def test_the_task_page_records_a_read_of_the_tasks_case(self, visitor, services, case_id):
        task_id = admission_review(services, case_id)
        assert visitor("carla").get(f"/tasks/{task_id}").status_code == 200
        assert reads(services) == [(case_id, NOW, "carla", "page", f"task {task_id} page")]

    def test_the_diagram_marks_are_a_read_and_the_deployed_drawing_is_not(self, visitor, services, case_id):
        carla = visitor("carla")
        assert carla.get(f"/cases/{case_id}/diagram.bpmn").status_code == 200
        assert reads(services) == [], "the drawing is the process's, the same for every case"
        assert carla.get(f"/cases/{case_id}/diagram-marks.json").status_code == 200
        assert reads(services) == [(case_id, NOW, "carla", "page", "case diagram marks")]

    def test_a_refused_note_shows_the_page_again_and_that_is_a_read(self, visitor, services, case_id):
        carla = visitor("carla")
        carla.get("/inbox")
        assert carla.post(f"/cases/{case_id}/notes", {"text": "   "}).status_code == 422
        assert reads(services) == [(case_id, NOW, "carla", "page", "case page")]


class TestApiRecordsItsReads:
    def test_a_case_with_its_tasks_events_notes_and_incidents(self, api, services, case_id):
        response = api("carla", f"/api/v1/cases/{case_id}")
        assert response.status_code == 200 and response.json["events"]
        assert reads(services) == [(case_id, NOW, "carla", "api", f"GET /api/v1/cases/{case_id}")]

    def test_a_task_and_the_task_list_of_a_case(self, api, services, case_id):
        task_id = admission_review(services, case_id)
        assert api("carla", f"/api/v1/tasks/{task_id}").status_code == 200
        assert api("carla", f"/api/v1/tasks?case_id={case_id}").json["items"]
        assert reads(services) == [
            (case_id, NOW, "carla", "api", f"GET /api/v1/tasks/{task_id}"),
            (case_id, NOW, "carla", "api", f"GET /api/v1/tasks?case_id={case_id}"),
        ]

    def test_a_task_list_across_cases_is_a_summary_and_not_recorded(self, api, services, case_id):
        assert api("carla", "/api/v1/tasks").json["items"]
        assert api("carla", "/api/v1/cases").status_code == 200
        assert reads(services) == []

    def test_a_supervisors_look_at_a_cases_tokens(self, api, services, case_id):
        assert api("sue", f"/api/v1/cases/{case_id}/tokens").status_code == 200
        assert reads(services) == [(case_id, NOW, "sue", "api", f"GET /api/v1/cases/{case_id}/tokens")]


class TestRefusalsRecordNothing:
    @pytest.mark.parametrize("path", ["", "/diagram-marks.json"])
    def test_a_case_of_another_setting_by_page(self, visitor, services, case_id, outsider, path):
        assert visitor("wes").get(f"/cases/{case_id}{path}").status_code == 404
        assert reads(services) == []

    @pytest.mark.parametrize("path", ["/api/v1/cases/{case}", "/api/v1/tasks/{task}", "/api/v1/tasks?case_id={case}"])
    def test_a_case_of_another_setting_by_api(self, api, services, case_id, outsider, path):
        response = api("wes", path.format(case=case_id, task=admission_review(services, case_id)))
        assert response.status_code == 404 or response.json["items"] == []
        assert reads(services) == []

    def test_a_case_that_does_not_exist(self, visitor, api, services, case_id):
        assert visitor("carla").get("/cases/9999").status_code == 404
        assert api("carla", "/api/v1/cases/9999").status_code == 404
        assert reads(services) == []

    def test_a_task_of_another_role(self, visitor, api, seed, services, case_id):
        advisors = seed.task(case_id, "Advisor review", role="physician_advisor")
        assert visitor("carla").get(f"/tasks/{advisors}").status_code == 403
        assert api("carla", f"/api/v1/tasks/{advisors}").status_code == 403
        assert reads(services) == []

    def test_a_case_managers_request_for_a_cases_tokens(self, api, services, case_id):
        assert api("carla", f"/api/v1/cases/{case_id}/tokens").status_code == 403
        assert reads(services) == []

    def test_the_inbox_shows_summaries_and_records_nothing(self, visitor, services, case_id):
        response = visitor("carla").get("/inbox?view=team")
        assert response.status_code == 200 and "Maria Gonzalez" in response.get_data(as_text=True)
        assert reads(services) == []


class TestExports:
    @pytest.fixture
    def stuck(self, seed, services):
        ada = seed.case("Ada Brown", "MRN-1")
        bo = seed.case("Bo Chen", "MRN-2")
        seed.task(ada, "Admission review", due_in_hours=-30, assignee="carla")
        seed.task(bo, "Continued stay review", due_in_hours=-2)
        assert run_stuck_scan(services, owner="test", every=timedelta(0), idle_days=7,
                              timer_grace=timedelta(minutes=5)) is not None
        return [ada, bo]

    def test_the_stuck_csv_records_one_export_read_per_case_listed_in_one_statement(self, visitor, services, stuck):
        inserts = []

        def count(conn, cursor, statement, parameters, context, executemany):
            if statement.lstrip().upper().startswith("INSERT INTO CASE_READ"):
                inserts.append(parameters)

        engine = services.uow.engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            response = visitor("sue").get("/stuck.csv")
            listed = [int(row["case"]) for row in csv.DictReader(io.StringIO(response.get_data(as_text=True)))]
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert sorted(listed) == sorted(stuck)
        assert sorted(reads(services)) == sorted((case, NOW, "sue", "export", "stuck-case CSV") for case in stuck)
        assert len(inserts) == 1, "one batched INSERT for the whole export"

    def test_a_refused_export_records_nothing(self, visitor, services, stuck):
        assert visitor("carla").get("/stuck.csv").status_code == 403
        assert reads(services) == []


class TestWhoOpenedTheCase:
    def text(self, response) -> str:
        page = response.get_data(as_text=True)
        found = re.search(r'<section class="panel" aria-labelledby="readers-title">(.*?)</section>', page, re.S)
        return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))) if found else ""

    def test_a_supervisor_sees_who_opened_the_case_newest_first(self, visitor, api, services, case_id):
        visitor("carla").get(f"/cases/{case_id}")
        api("cole", f"/api/v1/cases/{case_id}")
        listed = self.text(visitor("sue").get(f"/cases/{case_id}"))
        assert "Who opened this case" in listed
        assert re.search(r"sue case page \(page\).*cole GET /api/v1/cases/\d+ \(api\).*carla case page \(page\)", listed)

    def test_a_case_manager_does_not(self, visitor, services, case_id):
        visitor("sue").get(f"/cases/{case_id}")
        assert self.text(visitor("carla").get(f"/cases/{case_id}")) == ""
