"""A task's page: instructions, case, form; drafts, completion, the next task, assignment, and who may see it."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from workflows import accounts, catalog, deployment, handlers
from workflows.model import TaskStatus

from .conftest import task_titles

REPO = Path(__file__).resolve().parents[2]
UTILIZATION_REVIEW = REPO / "tests" / "data" / "diagrams" / "utilization_review"
CHOICE_LIST_FORM = REPO / "bpmn" / "acute_hospital" / "forms" / "choice_list.schema.json"
# One task whose form has an array of objects (the shipped post-acute choice list).
CHOICE_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d_choice" targetNamespace="t">
  <bpmn:process id="choice_list_offer" name="Offer a choice list" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="lane_cm" name="case_manager">
      <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>offer</bpmn:flowNodeRef><bpmn:flowNodeRef>end</bpmn:flowNodeRef>
    </bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="offer" name="Offer the choice list">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="choice_list.schema.json" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="offer" />
    <bpmn:sequenceFlow id="f2" sourceRef="offer" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
INSTRUCTIONS = "Review the order, payer and working diagnosis against your criteria set (InterQual/MCG)."
CRITERIA_MET = {"status_recommendation": "inpatient", "criteria_met": "true", "expected_midnights": "3"}



@pytest.fixture
def deployed(services):
    diagram_set = catalog.read_diagram_set(UTILIZATION_REVIEW, name="acute_hospital")
    deployment.deploy_diagram_set(services, diagram_set=diagram_set, actor=None)


def start_case(services, subject_name="Maria Gonzalez", subject_ref="MRN-1", process_id="acute_utilization_review"):
    carla = accounts.active_user(services, username="carla")
    return handlers.start_case(services, actor=carla, process_id=process_id,
                               subject_name=subject_name, subject_ref=subject_ref).id


def only_open_task(services, case_id):
    [task] = handlers.get_case(services, case_id=case_id).open_tasks
    return task


def read_task(services, task_id):
    with services.uow(read_only=True) as uow:
        return uow.tasks.get(task_id)


def event_kinds(services, case_id) -> list[str]:
    return [event.kind for event in handlers.get_case(services, case_id=case_id).events]


@pytest.fixture
def review(services, deployed) -> int:
    """The open admission review of Maria Gonzalez's case: a case manager's, unclaimed."""
    return only_open_task(services, start_case(services)).id


def page_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def flashes(response) -> str:
    page = response.get_data(as_text=True)
    return html.unescape(page.split('<div class="flashes">')[1].split("</div>")[0]) if '<div class="flashes">' in page else ""


def field_error(response, field_id: str) -> str:
    found = re.search(rf'<p class="field-error" id="{re.escape(field_id)}-error">(.*?)</p>', response.get_data(as_text=True), re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else ""


def input_value(response, name: str) -> str | None:
    """The value of the text or number input of this name, as the page fills it in."""
    for tag in re.findall(r"<input [^>]*>", response.get_data(as_text=True)):
        if f'name="{name}"' in tag and 'type="hidden"' not in tag:
            found = re.search(r'value="([^"]*)"', tag)
            return html.unescape(found.group(1)) if found else None
    return None


def checked(response, name: str) -> list[str]:
    """The values of the ticked radios or checkboxes of this name."""
    tags = re.findall(r"<input [^>]*>", response.get_data(as_text=True))
    return [re.search(r'value="([^"]*)"', tag).group(1) for tag in tags if f'name="{name}"' in tag and " checked" in tag]


def api_get(app, token: str, path: str):
    return app.test_client().get(f"/api/v1{path}", headers={"Authorization": f"Bearer {token}"})


class TestShowingATask:
    def test_the_page_shows_instructions_case_summary_and_the_form_fields(self, visitor, review):
        response = visitor("carla").get(f"/tasks/{review}")
        page = page_of(response)
        assert response.status_code == 200
        assert "<h1>Admission status review</h1>" in page
        assert INSTRUCTIONS in page
        assert "<dt>Subject</dt><dd>Maria Gonzalez <span class=\"ref\">MRN-1</span></dd>" in page
        assert "<dt>Setting</dt><dd>Acute hospital</dd>" in page and "<dt>Status</dt><dd>Active</dd>" in page
        for name in ("status_recommendation", "criteria_met", "criteria_set", "expected_midnights", "working_diagnosis", "review_notes"):
            assert f'name="{name}"' in page
        assert 'name="_action" value="complete"' in page and 'name="_action" value="save"' in page

    def test_a_user_without_the_tasks_role_gets_403_saying_whose_task_it_is(self, visitor, review):
        response = visitor("pat").get(f"/tasks/{review}")
        assert response.status_code == 403
        assert f"Task {review} is for the case_manager role; you can neither see nor work it." in page_of(response)

    def test_a_user_outside_the_cases_setting_gets_404_on_the_page_and_the_api(self, app, visitor, review, outsider):
        response = visitor("wes").get(f"/tasks/{review}")
        assert response.status_code == 404
        assert f"Task {review} does not exist." in page_of(response)
        refused = api_get(app, outsider, f"/tasks/{review}")
        assert refused.status_code == 404 and refused.json["error"]["message"] == f"Task {review} does not exist."

    def test_the_api_refuses_a_task_outside_the_users_roles_and_shows_it_to_its_role(self, app, services, review):
        assert api_get(app, accounts.new_token(services, username="pat"), f"/tasks/{review}").status_code == 403
        allowed = api_get(app, accounts.new_token(services, username="carla"), f"/tasks/{review}")
        assert allowed.status_code == 200 and allowed.json["form_schema"]["title"] == "Admission status review"

    def test_a_task_that_does_not_exist_is_404(self, visitor, deployed):
        response = visitor("carla").get("/tasks/9999")
        assert response.status_code == 404 and "Task 9999 does not exist." in page_of(response)


class TestInvalidSubmissions:
    def test_an_entry_that_does_not_convert_is_422_with_the_error_by_its_field_and_nothing_changes(
            self, visitor, services, review):
        carla = visitor("carla")
        carla.get(f"/tasks/{review}")
        response = carla.post(f"/tasks/{review}", {**CRITERIA_MET, "expected_midnights": "12a",
                                                   "working_diagnosis": "Community-acquired pneumonia", "_action": "complete"})
        assert response.status_code == 422
        assert field_error(response, "f-expected_midnights") == "Error: Enter a whole number."
        assert input_value(response, "expected_midnights") == "12a"
        assert input_value(response, "working_diagnosis") == "Community-acquired pneumonia"
        assert checked(response, "status_recommendation") == ["inpatient"] and checked(response, "criteria_met") == ["true"]
        assert "Nothing was submitted" in page_of(response)
        task = read_task(services, review)
        assert task.status == TaskStatus.OPEN and task.assignee is None and task.draft is None
        assert "task_completed" not in event_kinds(services, task.case_id)

    def test_a_missing_required_answer_is_422_with_the_error_by_its_field_and_nothing_changes(
            self, visitor, services, review):
        carla = visitor("carla")
        carla.get(f"/tasks/{review}")
        response = carla.post(f"/tasks/{review}", {"criteria_met": "true", "expected_midnights": "2",
                                                   "review_notes": "Meets InterQual", "_action": "complete"})
        assert response.status_code == 422
        assert field_error(response, "f-status_recommendation") == "Error: This field is required."
        assert input_value(response, "expected_midnights") == "2"
        assert ">Meets InterQual</textarea>" in page_of(response)
        assert read_task(services, review).status == TaskStatus.OPEN
        assert "task_completed" not in event_kinds(services, read_task(services, review).case_id)

    def test_every_problem_of_a_submission_is_shown_at_once(self, visitor, review):
        carla = visitor("carla")
        carla.get(f"/tasks/{review}")
        response = carla.post(f"/tasks/{review}", {"criteria_met": "true", "expected_midnights": "12a", "_action": "complete"})
        assert response.status_code == 422
        assert field_error(response, "f-expected_midnights") == "Error: Enter a whole number."
        assert field_error(response, "f-status_recommendation") == "Error: This field is required."


class TestDrafts:
    def test_saving_a_draft_keeps_even_unconverted_entries_and_claims_the_task_for_the_saver(
            self, visitor, services, review):
        carla = visitor("carla")
        carla.get(f"/tasks/{review}")
        response = carla.post(f"/tasks/{review}", {"expected_midnights": "12a", "working_diagnosis": "Sepsis", "_action": "save"})
        assert response.status_code == 303 and response.headers["Location"] == f"/tasks/{review}"
        page = carla.get(f"/tasks/{review}")
        assert "Draft of “Admission status review” saved. Nothing has been submitted yet." in flashes(page)
        assert "Draft saved by carla on Wed 4 Mar 15:00" in page_of(page)
        assert input_value(page, "expected_midnights") == "12a" and input_value(page, "working_diagnosis") == "Sepsis"
        task = read_task(services, review)
        assert (task.status, task.assignee, task.draft_saved_by) == (TaskStatus.CLAIMED, "carla", "carla")
        assert task.draft == {"expected_midnights": "12a", "working_diagnosis": "Sepsis"}
        kinds = event_kinds(services, task.case_id)
        assert "task_claimed" in kinds and "task_draft_saved" in kinds and "task_completed" not in kinds

    def test_someone_else_cannot_save_a_draft_over_a_claimed_task(self, visitor, services, review):
        visitor("carla").post(f"/tasks/{review}", {"working_diagnosis": "Sepsis", "_action": "save"})
        cole = visitor("cole")
        cole.get(f"/tasks/{review}")
        response = cole.post(f"/tasks/{review}", {"working_diagnosis": "Overwritten", "_action": "save", "back": f"/tasks/{review}"})
        assert response.status_code == 303
        assert f"Task {review} is claimed by carla." in flashes(cole.get(f"/tasks/{review}"))
        assert read_task(services, review).draft == {"working_diagnosis": "Sepsis"}


class TestCompleting:
    def test_completing_goes_to_the_inbox_with_a_message_and_offers_the_next_task(self, visitor, services, review):
        other = only_open_task(services, start_case(services, "John Smith", "MRN-2")).id
        carla = visitor("carla")
        carla.get(f"/tasks/{review}")
        response = carla.post(f"/tasks/{review}", {**CRITERIA_MET, "_action": "complete"})
        assert response.status_code == 303 and response.headers["Location"] == "/inbox"
        inbox = carla.get("/inbox")
        case_id = read_task(services, review).case_id
        assert f"Completed “Admission status review” for Maria Gonzalez (case {case_id})." in flashes(inbox)
        offered = re.search(r'<p class="next-task" id="next-task">Next: <a href="([^"]+)">([^<]+)</a>', inbox.get_data(as_text=True))
        assert offered and offered.groups() == (f"/tasks/{other}", "Admission status review")
        assert 'id="next-task"' not in carla.get("/inbox").get_data(as_text=True), "offered once"
        task = read_task(services, review)
        assert (task.status, task.completed_by) == (TaskStatus.COMPLETED, "carla")
        assert event_kinds(services, case_id).count("task_completed") == 1

    def test_the_next_task_is_the_same_cases_next_step_for_the_user_before_other_cases(self, visitor, services, review):
        start_case(services, "John Smith", "MRN-2")
        case_id = read_task(services, review).case_id
        carla_user = accounts.active_user(services, username="carla")
        follow_up = handlers.add_adhoc_task(services, actor=carla_user, case_id=case_id, title="Call the family",
                                            assignee="carla")
        carla = visitor("carla")
        carla.get(f"/tasks/{review}")
        carla.post(f"/tasks/{review}", {**CRITERIA_MET, "_action": "complete"})
        page = carla.get("/inbox").get_data(as_text=True)
        assert f'id="next-task">Next: <a href="/tasks/{follow_up.id}">Call the family</a>' in page

    def test_no_next_task_is_offered_when_nothing_is_left_for_the_user(self, visitor, review):
        carla = visitor("carla")
        carla.get(f"/tasks/{review}")
        carla.post(f"/tasks/{review}", {**CRITERIA_MET, "_action": "complete"})
        assert 'id="next-task"' not in carla.get("/inbox").get_data(as_text=True)

    def test_completing_a_task_someone_else_completed_meanwhile_says_so_and_keeps_their_answers(
            self, visitor, services, review):
        carla, cole = visitor("carla"), visitor("cole")
        carla.get(f"/tasks/{review}")
        cole.get(f"/tasks/{review}")
        assert cole.post(f"/tasks/{review}", {**CRITERIA_MET, "_action": "complete"}).status_code == 303
        late = carla.post(f"/tasks/{review}", {**CRITERIA_MET, "expected_midnights": "9", "_action": "complete",
                                               "back": f"/tasks/{review}"})
        assert late.status_code == 303 and late.headers["Location"] == f"/tasks/{review}"
        page = carla.get(f"/tasks/{review}")
        assert f"Task {review} is already completed by cole." in flashes(page)
        assert "This task is completed; there is nothing left to do on it." in page_of(page)
        case_id = read_task(services, review).case_id
        detail = handlers.get_case(services, case_id=case_id)
        assert [e.kind for e in detail.events].count("task_completed") == 1
        assert detail.case.data["expected_midnights"] == 3 and detail.case.version == 2
        assert read_task(services, review).completed_by == "cole"


def provider_rows(response) -> list[int]:
    """The row numbers of the choice list's "Providers on the list" the page shows."""
    return [int(n) for n in re.findall(r'name="providers_offered\.(\d+)\.provider_id"', response.get_data(as_text=True))]


class TestAddingRows:
    @pytest.fixture
    def offer(self, services) -> int:
        files = {"choice.bpmn": CHOICE_PROCESS.encode(), "forms/choice_list.schema.json": CHOICE_LIST_FORM.read_bytes()}
        deployment.deploy_diagram_set(services, diagram_set=catalog.DiagramSet("acute_hospital", files), actor=None)
        return only_open_task(services, start_case(services, process_id="choice_list_offer")).id

    def test_add_row_renders_the_form_again_with_one_more_row_and_the_entries_kept(self, visitor, services, offer):
        carla = visitor("carla")
        before = carla.get(f"/tasks/{offer}")
        assert provider_rows(before) == [0]
        response = carla.post(f"/tasks/{offer}", {
            "choice_list_given_to": "Ana Gonzalez", "providers_offered.0.provider_id": "NPI-1",
            "providers_offered.0.provider_name": "Sunrise SNF", "_add_row": "providers_offered",
        })
        assert response.status_code == 200
        assert provider_rows(response) == [0, 1]
        assert input_value(response, "providers_offered.1.provider_id") == ""
        assert input_value(response, "providers_offered.0.provider_name") == "Sunrise SNF"
        assert input_value(response, "choice_list_given_to") == "Ana Gonzalez"
        task = read_task(services, offer)
        assert task.status == TaskStatus.OPEN and task.draft is None


class TestAssigning:
    def test_a_supervisor_sees_only_eligible_people_in_the_assign_list(self, visitor, review, outsider):
        page = visitor("sue").get(f"/tasks/{review}").get_data(as_text=True)
        choices = re.findall(r'<option value="([^"]+)"', page.split('id="assignee"')[1].split("</select>")[0])
        assert choices == ["carla", "cole", "sue"]

    def test_a_case_manager_sees_no_assign_form(self, visitor, review):
        assert 'action="/tasks/%d/assign"' % review not in visitor("carla").get(f"/tasks/{review}").get_data(as_text=True)

    def test_a_supervisor_assigns_the_task_to_an_eligible_user(self, visitor, services, review):
        sue = visitor("sue")
        sue.get(f"/tasks/{review}")
        response = sue.post(f"/tasks/{review}/assign", {"assignee": "cole", "back": f"/tasks/{review}"})
        assert response.status_code == 303 and response.headers["Location"] == f"/tasks/{review}"
        task = read_task(services, review)
        assert "“Admission status review” (case %d) is now assigned to cole." % task.case_id in flashes(sue.get(f"/tasks/{review}"))
        assert (task.status, task.assignee) == (TaskStatus.CLAIMED, "cole")
        [assigned] = [e for e in handlers.get_case(services, case_id=task.case_id).events if e.kind == "task_assigned"]
        assert assigned.actor == "sue" and assigned.payload["data"] == {"assignee": "cole", "previous": None}
        assert "Admission status review" in task_titles(visitor("cole").get("/"))

    def test_a_user_who_is_not_a_supervisor_cannot_assign(self, visitor, services, review):
        carla = visitor("carla")
        carla.get(f"/tasks/{review}")
        response = carla.post(f"/tasks/{review}/assign", {"assignee": "cole", "back": f"/tasks/{review}"})
        # Web form actions that fail flash the reason and go back (service/web/errors.py), rather than a 403 page.
        assert response.status_code == 303
        assert "Only supervisors can assign a task to someone." in flashes(carla.get(f"/tasks/{review}"))
        assert read_task(services, review).assignee is None

    @pytest.mark.parametrize("assignee, reason", [
        ("pat", "pat does not hold the case_manager role this task needs."),
        ("wes", "wes does not cover the acute_hospital setting of case"),
        ("nobody", "There is no active user named 'nobody'."),
    ])
    def test_assigning_to_someone_ineligible_is_refused_naming_why(self, visitor, services, review, outsider, assignee, reason):
        sue = visitor("sue")
        sue.get(f"/tasks/{review}")
        response = sue.post(f"/tasks/{review}/assign", {"assignee": assignee, "back": f"/tasks/{review}"})
        assert response.status_code == 303
        assert reason in flashes(sue.get(f"/tasks/{review}"))
        task = read_task(services, review)
        assert (task.status, task.assignee) == (TaskStatus.OPEN, None)
        assert "task_assigned" not in event_kinds(services, task.case_id)


class TestFormTokens:
    def test_completing_without_the_forms_token_is_refused_and_changes_nothing(self, visitor, services, review):
        carla = visitor("carla")
        carla.get(f"/tasks/{review}")
        response = carla.post(f"/tasks/{review}", {**CRITERIA_MET, "_action": "complete"}, with_token=False)
        assert response.status_code == 400
        assert "without a valid security token" in page_of(response)
        assert read_task(services, review).status == TaskStatus.OPEN

    def test_assigning_without_the_forms_token_is_refused(self, visitor, services, review):
        sue = visitor("sue")
        sue.get(f"/tasks/{review}")
        response = sue.post(f"/tasks/{review}/assign", {"assignee": "cole", "csrf_token": "forged"}, with_token=False)
        assert response.status_code == 400
        assert read_task(services, review).assignee is None
