"""A case's page: subject, tasks, timers, history and notes; its diagram and marks; notes and ad-hoc tasks added to it."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from workflows import accounts, catalog, deployment, handlers
from workflows.model import CaseStatus, TaskStatus

from .conftest import task_row, task_titles

REPO = Path(__file__).resolve().parents[2]
UTILIZATION_REVIEW = REPO / "tests" / "data" / "diagrams" / "utilization_review"
CRITERIA_MET = {"status_recommendation": "inpatient", "criteria_met": "true", "expected_midnights": "3"}
CRITERIA_NOT_MET = {"status_recommendation": "observation", "criteria_met": "false", "expected_midnights": "1"}



@pytest.fixture
def case_id(services) -> int:
    """Maria Gonzalez's utilization review, waiting at its admission review (a case manager's task)."""
    diagram_set = catalog.read_diagram_set(UTILIZATION_REVIEW, name="acute_hospital")
    deployment.deploy_diagram_set(services, diagram_set=diagram_set, actor=None)
    carla = accounts.active_user(services, username="carla")
    return handlers.start_case(services, actor=carla, process_id="acute_utilization_review",
                               subject_name="Maria Gonzalez", subject_ref="MRN-1").id


def open_tasks(services, case_id):
    return handlers.get_case(services, case_id=case_id).open_tasks


def events(services, case_id, kind: str):
    return [event for event in handlers.get_case(services, case_id=case_id).events if event.kind == kind]


def read_task(services, task_id):
    with services.uow(read_only=True) as uow:
        return uow.tasks.get(task_id)


def complete(browser, task_id: int, data: dict):
    browser.get(f"/tasks/{task_id}")
    return browser.post(f"/tasks/{task_id}", {**data, "_action": "complete", "back": f"/tasks/{task_id}"})


def text_of(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))))


def section(response, heading_id: str) -> str:
    """The text of the page's panel whose heading has this id."""
    page = response.get_data(as_text=True)
    found = re.search(rf'<section class="panel[^"]*" aria-labelledby="{heading_id}">(.*?)</section>', page, re.S)
    assert found, f"no section {heading_id!r}"
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))).strip()


def flashes(response) -> str:
    page = response.get_data(as_text=True)
    return html.unescape(page.split('<div class="flashes">')[1].split("</div>")[0]) if '<div class="flashes">' in page else ""


def adhoc_error(response, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="adhoc-{name}-error">(.*?)</p>', response.get_data(as_text=True), re.S)
    return html.unescape(found.group(1)).strip() if found else ""


def adhoc_tasks(services, case_id):
    return [task for task in open_tasks(services, case_id) if task.adhoc]


class TestShowingACase:
    def test_the_page_shows_subject_status_open_tasks_history_and_notes(self, visitor, services, case_id):
        handlers.add_note(services, actor=accounts.active_user(services, username="cole"), case_id=case_id,
                          text="Daughter is the health care proxy.")
        response = visitor("carla").get(f"/cases/{case_id}")
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert '<h1>Maria Gonzalez <span class="ref">MRN-1</span></h1>' in page
        assert '<span class="status status-active">Active</span>' in page
        [task] = open_tasks(services, case_id)
        assert f'<a href="/tasks/{task.id}">Admission status review</a>' in page
        assert "Open tasks 1" in section(response, "open-tasks")
        history = section(response, "timeline-title")
        assert "carla opened the case" in history and "carla Task opened: Admission status review" in history
        notes = section(response, "notes")
        assert "Notes 1" in notes and "Daughter is the health care proxy. cole · Wed 4 Mar 15:00" in notes
        assert "No timers are waiting." in section(response, "timers-title")

    def test_a_task_is_linked_only_for_users_who_may_open_it(self, visitor, services, case_id):
        [task] = open_tasks(services, case_id)
        page = visitor("pat").get(f"/cases/{case_id}").get_data(as_text=True)
        assert f'href="/tasks/{task.id}"' not in page
        assert re.search(rf'<tr class="[^"]*" data-task-id="{task.id}">\s*<td>Admission status review', page)

    def test_a_waiting_timer_and_the_completed_step_show_once_the_case_moves_on(self, visitor, services, case_id):
        [task] = open_tasks(services, case_id)
        carla = visitor("carla")
        complete(carla, task.id, CRITERIA_MET)
        response = carla.get(f"/cases/{case_id}")
        assert "Wait for review date: Thu 5 Mar 15:00 (in 24 h)" in section(response, "timers-title")
        assert "Nothing is waiting for a person." in section(response, "open-tasks")
        assert "carla completed: Admission status review" in section(response, "timeline-title")

    def test_a_case_that_does_not_exist_is_404(self, visitor, case_id):
        response = visitor("carla").get("/cases/9999")
        assert response.status_code == 404 and "Case 9999 does not exist." in text_of(response)


class TestAccessBySetting:
    @pytest.mark.parametrize("path", ["", "/diagram.bpmn", "/diagram-marks.json"])
    def test_a_user_outside_the_cases_setting_is_told_it_does_not_exist(self, visitor, case_id, outsider, path):
        response = visitor("wes").get(f"/cases/{case_id}{path}")
        assert response.status_code == 404
        assert f"Case {case_id} does not exist." in text_of(response)
        assert b"<bpmn:definitions" not in response.data and b"admission_review" not in response.data

    def test_a_user_outside_the_cases_setting_cannot_add_a_note(self, visitor, services, case_id, outsider):
        wes = visitor("wes")
        wes.get("/inbox")
        response = wes.post(f"/cases/{case_id}/notes", {"text": "Peeking", "back": "/inbox"})
        assert response.status_code == 303
        assert f"Case {case_id} does not exist." in flashes(wes.get("/inbox"))
        assert handlers.get_case(services, case_id=case_id).notes == []


class TestDiagram:
    def test_the_diagram_is_the_deployed_file(self, visitor, case_id):
        response = visitor("carla").get(f"/cases/{case_id}/diagram.bpmn")
        assert response.status_code == 200 and response.mimetype == "application/xml"
        assert response.data == (UTILIZATION_REVIEW / "utilization_review.bpmn").read_bytes()

    def test_the_marks_list_the_active_elements_of_the_open_tasks_and_what_is_done(self, visitor, case_id):
        marks = visitor("carla").get(f"/cases/{case_id}/diagram-marks.json").json
        assert marks == {"process_id": "acute_utilization_review", "completed": ["order_received", "set_review_policy"],
                         "active": {"admission_review": 1}, "waiting": [], "errored": {}}

    def test_the_marks_follow_the_case_to_its_next_task_and_its_timer(self, visitor, services, case_id):
        carla = visitor("carla")
        [review] = open_tasks(services, case_id)
        complete(carla, review.id, CRITERIA_NOT_MET)
        marks = carla.get(f"/cases/{case_id}/diagram-marks.json").json
        assert marks["active"] == {task.element_id: 1 for task in open_tasks(services, case_id)} == {"physician_advisor_review": 1}
        assert marks["waiting"] == []
        [advice] = open_tasks(services, case_id)
        complete(visitor("pat"), advice.id, {"advisor_decision": "keep_status", "advisor_rationale": "Two-midnight rule met"})
        marks = carla.get(f"/cases/{case_id}/diagram-marks.json").json
        assert marks["active"] == {} and marks["waiting"] == ["wait_for_review_date"]
        assert "schedule_next_review" in marks["completed"]

    def test_steps_done_before_the_last_action_stay_marked_completed(self, visitor, services, case_id):
        carla = visitor("carla")
        [review] = open_tasks(services, case_id)
        complete(carla, review.id, CRITERIA_NOT_MET)
        marks = carla.get(f"/cases/{case_id}/diagram-marks.json").json
        assert {"order_received", "set_review_policy", "admission_review", "criteria_met_gateway"} <= set(marks["completed"])

    def test_a_file_that_is_not_one_of_the_cases_diagrams_is_404(self, visitor, case_id):
        response = visitor("carla").get(f"/cases/{case_id}/diagram.bpmn?path=forms/admission_review.schema.json")
        assert response.status_code == 404


class TestNotes:
    def test_a_note_is_added_shown_and_recorded(self, visitor, services, case_id):
        carla = visitor("carla")
        carla.get(f"/cases/{case_id}")
        response = carla.post(f"/cases/{case_id}/notes", {"text": "  Spoke with the daughter about discharge.  "})
        assert response.status_code == 303 and response.headers["Location"] == f"/cases/{case_id}#notes"
        page = carla.get(f"/cases/{case_id}")
        assert "Note added." in flashes(page)
        assert "Spoke with the daughter about discharge. carla · Wed 4 Mar 15:00" in section(page, "notes")
        assert "carla added a note" in section(page, "timeline-title")
        [note] = handlers.get_case(services, case_id=case_id).notes
        assert (note.text, note.author) == ("Spoke with the daughter about discharge.", "carla")
        [added] = events(services, case_id, "note_added")
        assert added.payload == {"note_id": note.id} and added.actor == "carla"

    def test_a_blank_note_is_refused_and_nothing_is_added(self, visitor, services, case_id):
        carla = visitor("carla")
        carla.get(f"/cases/{case_id}")
        response = carla.post(f"/cases/{case_id}/notes", {"text": "   \n "})
        assert response.status_code == 422
        found = re.search(r'<p class="field-error" id="note-error">([^<]*)</p>', response.get_data(as_text=True))
        assert found and found.group(1) == "Write the note."
        assert 'aria-describedby="note-error"' in response.get_data(as_text=True)
        assert handlers.get_case(services, case_id=case_id).notes == [] and events(services, case_id, "note_added") == []

    def test_a_note_that_is_too_long_is_refused_and_kept_for_shortening(self, visitor, services, case_id):
        carla = visitor("carla")
        carla.get(f"/cases/{case_id}")
        response = carla.post(f"/cases/{case_id}/notes", {"text": "x" * 10_001})
        assert response.status_code == 422
        assert "Use at most 10,000 characters." in response.get_data(as_text=True)
        assert ">" + "x" * 10_001 + "</textarea>" in response.get_data(as_text=True)
        assert handlers.get_case(services, case_id=case_id).notes == []

    def test_a_note_without_the_forms_token_is_refused(self, visitor, services, case_id):
        carla = visitor("carla")
        carla.get(f"/cases/{case_id}")
        response = carla.post(f"/cases/{case_id}/notes", {"text": "Forged"}, with_token=False)
        assert response.status_code == 400
        assert handlers.get_case(services, case_id=case_id).notes == []


class TestAdHocTasks:
    def add(self, browser, case_id: int, **fields):
        browser.get(f"/cases/{case_id}")
        entered = {"title": "Call the family", "due_at": "2026-03-05T09:30", "who": "user:cole",
                   "note": "Ask who will drive her home."}
        entered.update(fields)
        return browser.post(f"/cases/{case_id}/tasks", entered)

    def test_a_task_for_a_person_lands_in_their_tasks_with_the_ad_hoc_badge(self, visitor, services, case_id):
        carla = visitor("carla")
        response = self.add(carla, case_id)
        assert response.status_code == 303 and response.headers["Location"] == f"/cases/{case_id}#open-tasks"
        [task] = adhoc_tasks(services, case_id)
        assert (task.title, task.assignee, task.candidate_role, task.status) == ("Call the family", "cole", None, TaskStatus.CLAIMED)
        assert task.instructions == "Ask who will drive her home."
        assert task.due_at.isoformat() == "2026-03-05T09:30:00+00:00"
        mine = visitor("cole").get("/")
        assert "Call the family" in task_titles(mine)
        assert '<span class="badge badge-adhoc">Ad hoc</span>' in task_row(mine, "Call the family")
        page = carla.get(f"/cases/{case_id}")
        assert f"Task “Call the family” added to case {case_id} for cole." in flashes(page)
        # carla added it but it is cole's: she sees it on the case without a link to its form.
        assert re.search(r'<td>Call the family\s*<span class="badge badge-adhoc">Ad hoc</span>', page.get_data(as_text=True))
        assert f'href="/tasks/{task.id}"' not in page.get_data(as_text=True)
        [created] = [e for e in events(services, case_id, "task_created") if e.payload.get("adhoc")]
        assert created.actor == "carla" and created.payload["assignee"] == "cole"

    def test_a_task_for_a_role_lands_in_that_teams_queue_only(self, visitor, services, case_id):
        assert self.add(visitor("carla"), case_id, who="role:physician_advisor").status_code == 303
        [task] = adhoc_tasks(services, case_id)
        assert (task.assignee, task.candidate_role, task.status) == (None, "physician_advisor", TaskStatus.OPEN)
        queue = visitor("pat").get("/inbox?view=team")
        assert "Call the family" in task_titles(queue)
        assert "Ad hoc" in task_row(queue, "Call the family")
        assert "Call the family" not in task_titles(visitor("cole").get("/inbox?view=team"))

    def test_an_ad_hoc_task_stays_open_when_the_case_moves_on(self, visitor, services, case_id):
        carla = visitor("carla")
        self.add(carla, case_id, who="role:case_manager")
        [review] = [task for task in open_tasks(services, case_id) if not task.adhoc]
        assert complete(carla, review.id, CRITERIA_MET).status_code == 303
        [adhoc] = open_tasks(services, case_id)
        assert adhoc.adhoc and adhoc.status == TaskStatus.OPEN
        assert read_task(services, review.id).status == TaskStatus.COMPLETED
        assert "Call the family" in section(carla.get(f"/cases/{case_id}"), "open-tasks")

    def test_an_ad_hoc_task_is_cancelled_with_its_case(self, app, visitor, services, case_id):
        self.add(visitor("carla"), case_id)
        [adhoc] = adhoc_tasks(services, case_id)
        token = accounts.new_token(services, username="sue")
        response = app.test_client().post(f"/api/v1/cases/{case_id}/cancel", json={"reason": "Duplicate referral"},
                                          headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.json
        assert read_task(services, adhoc.id).status == TaskStatus.CANCELLED
        assert adhoc.id in [e.payload["task_id"] for e in events(services, case_id, "task_cancelled")]
        assert "Call the family" not in task_titles(visitor("cole").get("/"))

    def test_completing_an_ad_hoc_task_needs_an_outcome_and_records_it(self, visitor, services, case_id):
        self.add(visitor("carla"), case_id)
        [adhoc] = adhoc_tasks(services, case_id)
        cole = visitor("cole")
        page = cole.get(f"/tasks/{adhoc.id}").get_data(as_text=True)
        assert 'name="outcome"' in page and "Ask who will drive her home." in page
        refused = complete(cole, adhoc.id, {"outcome": "  "})
        assert refused.status_code == 422
        assert re.search(r'id="f-outcome-error">.*This field is required\.</p>', refused.get_data(as_text=True))
        assert read_task(services, adhoc.id).status == TaskStatus.CLAIMED and events(services, case_id, "task_completed") == []
        done = complete(cole, adhoc.id, {"outcome": "Son will drive her home on Friday."})
        assert done.status_code == 303 and done.headers["Location"] == "/inbox"
        task = read_task(services, adhoc.id)
        assert (task.status, task.completed_by) == (TaskStatus.COMPLETED, "cole")
        [completed] = events(services, case_id, "task_completed")
        assert completed.payload["data"] == {"outcome": "Son will drive her home on Friday."}
        assert [t.element_id for t in open_tasks(services, case_id)] == ["admission_review"], "the diagram's task is untouched"

    @pytest.mark.parametrize("fields, field, message", [
        ({"title": "  "}, "title", "Give a title of 1 to 200 characters."),
        ({"title": "x" * 201}, "title", "Give a title of 1 to 200 characters."),
        ({"who": "user:nobody"}, "who", "There is no active user named 'nobody'."),
        ({"who": "user:wes"}, "who", "wes does not cover the acute_hospital setting of this case."),
        ({"who": "role:social_worker"}, "who", "Nobody who covers the acute_hospital setting holds the role 'social_worker'."),
        ({"due_at": "2026-03-04T14:59"}, "due_at", "Give a due time in the future."),
        ({"due_at": "next Tuesday"}, "due_at", "Enter a date and time."),
        ({"note": "x" * 10_001}, "note", "Use at most 10,000 characters."),
    ], ids=["blank-title", "long-title", "unknown-user", "outside-setting",
            "role-nobody-holds", "due-in-the-past", "garbage-due", "long-note"])
    def test_invalid_input_is_422_with_the_fields_message_and_the_entries_kept(
            self, visitor, services, case_id, outsider, fields, field, message):
        response = self.add(visitor("carla"), case_id, **fields)
        assert response.status_code == 422
        assert adhoc_error(response, field) == message
        entered = {"title": "Call the family", "due_at": "2026-03-05T09:30", "note": "Ask who will drive her home.", **fields}
        page = response.get_data(as_text=True)
        if field != "title":
            assert f'name="title" maxlength="200" required value="{entered["title"]}"' in page
        if field != "due_at":
            assert f'name="due_at" type="datetime-local" value="{entered["due_at"]}"' in page
        if field != "note":
            assert f'>{entered["note"]}</textarea>' in page
        if fields.get("who", "user:cole").startswith(("user:cole", "role:")) and field != "who":
            assert f'value="{fields.get("who", "user:cole")}" selected' in page
        assert adhoc_tasks(services, case_id) == []

    def test_a_role_nobody_covering_the_cases_setting_holds_is_refused(self, visitor, services, case_id):
        accounts.add_user(services, username="adam", roles=["adjuster"], settings=["workers_comp"])
        response = self.add(visitor("carla"), case_id, who="role:adjuster")
        assert response.status_code == 422
        assert "adjuster" in adhoc_error(response, "who")
        assert adhoc_tasks(services, case_id) == []

    @pytest.mark.parametrize("who", ["", "team:case_manager", "user:"])
    def test_choosing_neither_a_person_nor_a_role_is_422_with_the_message_by_the_field(self, visitor, services, case_id, who):
        response = self.add(visitor("carla"), case_id, who=who)
        assert response.status_code == 422
        assert adhoc_error(response, "who") == "Choose a person or a role."
        assert adhoc_tasks(services, case_id) == []

    def test_a_garbage_due_time_and_a_blank_title_are_both_reported(self, visitor, services, case_id):
        response = self.add(visitor("carla"), case_id, title="", due_at="soon")
        assert response.status_code == 422
        assert adhoc_error(response, "due_at") == "Enter a date and time."
        assert adhoc_error(response, "title") == "Give a title of 1 to 200 characters."

    def test_an_ad_hoc_task_without_the_forms_token_is_refused(self, visitor, services, case_id):
        carla = visitor("carla")
        carla.get(f"/cases/{case_id}")
        response = carla.post(f"/cases/{case_id}/tasks", {"title": "Forged", "who": "user:cole"}, with_token=False)
        assert response.status_code == 400
        assert adhoc_tasks(services, case_id) == []


class TestCaseActions:
    def test_a_supervisor_suspends_then_resumes_a_case(self, visitor, services, case_id):
        sue = visitor("sue")
        sue.get(f"/cases/{case_id}")
        response = sue.post(f"/cases/{case_id}/suspend", {"reason": "Transferred out for surgery"})
        assert response.status_code == 303 and response.headers["Location"] == f"/cases/{case_id}"
        assert handlers.get_case(services, case_id=case_id).case.status == CaseStatus.SUSPENDED
        page = sue.get(f"/cases/{case_id}").get_data(as_text=True)
        assert "is on hold" in html.unescape(page) and "Resume the case" in page
        sue.post(f"/cases/{case_id}/resume", {"reason": ""})
        assert handlers.get_case(services, case_id=case_id).case.status == CaseStatus.ACTIVE
        assert {"case_suspended", "case_resumed"} <= set([e.kind for e in handlers.get_case(services, case_id=case_id).events])

    def test_cancelling_needs_a_reason_and_a_supervisor(self, visitor, services, case_id):
        sue = visitor("sue")
        sue.get(f"/cases/{case_id}")
        refused = sue.post(f"/cases/{case_id}/cancel", {"reason": "  "})
        assert refused.status_code == 303
        assert "Give a reason" in html.unescape(sue.get(f"/cases/{case_id}").get_data(as_text=True))
        assert handlers.get_case(services, case_id=case_id).case.status == CaseStatus.ACTIVE
        carla = visitor("carla")
        carla.get(f"/cases/{case_id}")
        assert "Manage the case" not in carla.get(f"/cases/{case_id}").get_data(as_text=True)
        carla.post(f"/cases/{case_id}/cancel", {"reason": "duplicate"})
        assert handlers.get_case(services, case_id=case_id).case.status == CaseStatus.ACTIVE
        sue.post(f"/cases/{case_id}/cancel", {"reason": "Duplicate of another case"})
        assert handlers.get_case(services, case_id=case_id).case.status == CaseStatus.CANCELLED
        assert "case_cancelled" in [e.kind for e in handlers.get_case(services, case_id=case_id).events]
