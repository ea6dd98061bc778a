"""The worklist use cases against in-memory fakes: the next task, diagram marks, drafts, notes, ad-hoc tasks, who sees what."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.unit.fakes import FakeClock, FakeUnitOfWorkFactory, user
from workflows import catalog, deployment, handlers
from workflows.engine import Engine
from workflows.errors import Conflict, Forbidden, InvalidInput, NotFound
from workflows.handlers.common import visible_case, visible_task
from workflows.handlers.tasks import MAX_DRAFT_BYTES
from workflows.model import Case, CaseStatus, HumanTask, Incident, TaskStatus, User
from workflows.services import Services

UTILIZATION_REVIEW = Path(__file__).resolve().parent.parent / "data" / "diagrams" / "utilization_review"
CARLA = user("carla", "case_manager")
COLE = user("cole", "case_manager")
PAT = user("pat", "physician_advisor")
SUE = user("sue", "supervisor")
WES = User("wes", ["case_manager", "supervisor"], "wes", settings=["workers_comp"])
CRITERIA_MET = {"status_recommendation": "inpatient", "criteria_met": True, "expected_midnights": 3}
CRITERIA_NOT_MET = {"status_recommendation": "observation", "criteria_met": False, "expected_midnights": 1}


@pytest.fixture
def services():
    services = Services(uow=FakeUnitOfWorkFactory(), clock=FakeClock(), engine=Engine(script_time_limit=0.5))
    with services.uow() as uow:
        for person in (CARLA, COLE, PAT, SUE, WES):
            uow.users.add(User(person.username, list(person.roles), person.username, settings=list(person.settings)))
        uow.commit()
    return services


def deploy_review(services) -> None:
    diagram_set = catalog.read_diagram_set(UTILIZATION_REVIEW, name="acute_hospital")
    deployment.deploy_diagram_set(services, diagram_set=diagram_set, actor=None)


def start_review(services, subject_name="Maria Gonzalez") -> int:
    return handlers.start_case(services, actor=CARLA, process_id="acute_utilization_review", subject_name=subject_name).id


def open_tasks(services, case_id):
    return handlers.get_case(services, case_id=case_id).open_tasks


class Rows:
    """Cases and tasks written straight to the fake store, for the rules that do not need the engine."""

    def __init__(self, services):
        self.services = services
        self.refs = 0

    def case(self, setting="acute_hospital", status=CaseStatus.ACTIVE) -> int:
        now = self.services.clock.now()
        with self.services.uow() as uow:
            case = uow.cases.add(Case(process_version_id=1, process_id="acute_stay", state="{}", status=status,
                                      opened_at=now, opened_by="carla", setting=setting))
            uow.commit()
        return case.id

    def task(self, case_id, title="Admission review", *, role="case_manager", assignee=None, due_in_hours=None,
             status=None, completed_by=None) -> int:
        now = self.services.clock.now()
        self.refs += 1
        with self.services.uow() as uow:
            task = uow.tasks.add(HumanTask(
                case_id=case_id, task_ref=f"ref-{self.refs}", element_id=title.lower().replace(" ", "_"), title=title,
                candidate_role=role, created_at=now,
                status=status or (TaskStatus.CLAIMED if assignee else TaskStatus.OPEN), assignee=assignee,
                due_at=now + timedelta(hours=due_in_hours) if due_in_hours is not None else None,
                completed_by=completed_by,
            ))
            uow.commit()
        return task.id


@pytest.fixture
def rows(services) -> Rows:
    return Rows(services)


def next_id(services, actor, case_id):
    found = handlers.next_task(services, actor=actor, case_id=case_id)
    return found.id if found is not None else None


class TestNextTask:
    def test_the_same_cases_next_step_comes_before_sooner_work_elsewhere(self, services, rows):
        here, elsewhere = rows.case(), rows.case()
        rows.task(elsewhere, "Mine elsewhere", assignee="carla", due_in_hours=1)
        rows.task(elsewhere, "Team elsewhere", due_in_hours=1)
        step = rows.task(here, "Discharge screen", due_in_hours=48)
        assert next_id(services, CARLA, here) == step

    def test_a_step_of_the_same_case_the_user_cannot_work_is_passed_over(self, services, rows):
        here, elsewhere = rows.case(), rows.case()
        rows.task(here, "Advisor review", role="physician_advisor")
        rows.task(here, "Claimed by cole", assignee="cole")
        mine = rows.task(elsewhere, "Mine elsewhere", assignee="carla", due_in_hours=30)
        assert next_id(services, CARLA, here) == mine

    def test_my_tasks_come_before_the_team_queue(self, services, rows):
        done, elsewhere = rows.case(), rows.case()
        rows.task(elsewhere, "Team, due first", due_in_hours=1)
        mine = rows.task(elsewhere, "Mine, due later", assignee="carla", due_in_hours=40)
        assert next_id(services, CARLA, done) == mine

    def test_the_team_queue_offers_the_soonest_due_task_of_my_roles(self, services, rows):
        done, elsewhere = rows.case(), rows.case()
        rows.task(elsewhere, "Advisor review", role="physician_advisor", due_in_hours=1)
        rows.task(elsewhere, "Later", due_in_hours=30)
        soonest = rows.task(elsewhere, "Sooner", due_in_hours=2)
        assert next_id(services, CARLA, done) == soonest

    def test_nothing_is_offered_when_nothing_is_left_for_the_user(self, services, rows):
        done, elsewhere = rows.case(), rows.case()
        rows.task(elsewhere, "Advisor review", role="physician_advisor")
        rows.task(elsewhere, "Claimed by cole", assignee="cole")
        rows.task(elsewhere, "Already done", status=TaskStatus.COMPLETED, completed_by="carla")
        assert handlers.next_task(services, actor=CARLA, case_id=done) is None

    def test_work_in_a_setting_the_user_does_not_cover_is_not_offered(self, services, rows):
        done, acute = rows.case("workers_comp"), rows.case("acute_hospital")
        rows.task(acute, "Acute review", due_in_hours=1)
        assert handlers.next_task(services, actor=WES, case_id=done) is None
        comp = rows.task(rows.case("workers_comp"), "Contact employer", due_in_hours=5)
        assert next_id(services, WES, done) == comp


class TestDiagramMarks:
    @pytest.fixture
    def case_id(self, services):
        deploy_review(services)
        return start_review(services)

    def test_a_new_case_marks_the_steps_before_its_first_task_done_and_the_task_active(self, services, case_id):
        diagram = handlers.case_diagram(services, actor=CARLA, case_id=case_id)
        assert diagram.completed == ["order_received", "set_review_policy"]
        assert diagram.active == {"admission_review": 1} and diagram.waiting == [] and diagram.errored == {}
        assert diagram.path == "utilization_review.bpmn" and diagram.paths == ["utilization_review.bpmn"]
        assert diagram.xml == (UTILIZATION_REVIEW / "utilization_review.bpmn").read_bytes()

    def test_a_case_waiting_on_its_timer_marks_the_timer_waiting_and_nothing_active(self, services, case_id):
        [review] = open_tasks(services, case_id)
        handlers.complete_task(services, actor=CARLA, task_id=review.id, data=CRITERIA_MET)
        diagram = handlers.case_diagram(services, actor=CARLA, case_id=case_id)
        assert diagram.active == {} and diagram.waiting == ["wait_for_review_date"]
        assert "schedule_next_review" in diagram.completed and "wait_for_review_date" not in diagram.completed

    def test_the_active_marks_are_the_open_tasks_elements(self, services, case_id):
        [review] = open_tasks(services, case_id)
        handlers.complete_task(services, actor=CARLA, task_id=review.id, data=CRITERIA_NOT_MET)
        diagram = handlers.case_diagram(services, actor=CARLA, case_id=case_id)
        assert diagram.active == {t.element_id: 1 for t in open_tasks(services, case_id)} == {"physician_advisor_review": 1}

    def test_steps_done_in_earlier_actions_stay_marked_completed(self, services, case_id):
        [review] = open_tasks(services, case_id)
        handlers.complete_task(services, actor=CARLA, task_id=review.id, data=CRITERIA_MET)
        diagram = handlers.case_diagram(services, actor=CARLA, case_id=case_id)
        assert {"order_received", "set_review_policy", "admission_review", "criteria_met_gateway",
                "advisor_join", "schedule_next_review"} <= set(diagram.completed)

    def test_an_open_incident_marks_its_element_errored(self, services, case_id):
        with services.uow() as uow:
            uow.incidents.add(Incident(case_id=case_id, kind="script", message="name 'x' is not defined",
                                       created_at=services.clock.now(), element_id="schedule_next_review"))
            uow.commit()
        diagram = handlers.case_diagram(services, actor=CARLA, case_id=case_id)
        assert diagram.errored == {"schedule_next_review": "name 'x' is not defined"}

    def test_a_file_that_is_not_a_diagram_of_the_case_is_not_found(self, services, case_id):
        with pytest.raises(NotFound, match="has no diagram file 'forms/admission_review.schema.json'"):
            handlers.case_diagram(services, actor=CARLA, case_id=case_id, path="forms/admission_review.schema.json")

    def test_a_user_outside_the_cases_setting_is_told_the_case_does_not_exist(self, services, case_id):
        with pytest.raises(NotFound, match=f"^Case {case_id} does not exist.$"):
            handlers.case_diagram(services, actor=WES, case_id=case_id)


class TestDrafts:
    def test_a_draft_at_the_size_limit_is_kept_and_claims_the_task(self, services, rows):
        task_id = rows.task(rows.case())
        data = {"review_notes": "x" * (MAX_DRAFT_BYTES - len('{"review_notes": ""}'))}
        saved = handlers.save_draft(services, actor=CARLA, task_id=task_id, data=data)
        assert (saved.assignee, saved.status, saved.draft, saved.draft_saved_by) == ("carla", TaskStatus.CLAIMED, data, "carla")
        kinds = [e.kind for e in handlers.get_case(services, case_id=saved.case_id).events]
        assert kinds == ["task_claimed", "task_draft_saved"]

    def test_a_draft_over_the_size_limit_is_refused_and_nothing_changes(self, services, rows):
        task_id = rows.task(rows.case())
        data = {"review_notes": "x" * (MAX_DRAFT_BYTES - len('{"review_notes": ""}') + 1)}
        with pytest.raises(InvalidInput, match="larger than 256 KiB") as refused:
            handlers.save_draft(services, actor=CARLA, task_id=task_id, data=data)
        assert refused.value.field_errors == {"data": ["Too large."]}
        with services.uow(read_only=True) as uow:
            task = uow.tasks.get(task_id)
        assert (task.assignee, task.status, task.draft) == (None, TaskStatus.OPEN, None)

    def test_a_draft_that_is_not_an_object_is_refused(self, services, rows):
        with pytest.raises(InvalidInput, match="must be a JSON object"):
            handlers.save_draft(services, actor=CARLA, task_id=rows.task(rows.case()), data=["not", "an", "object"])

    def test_a_draft_on_a_task_someone_else_claimed_is_refused(self, services, rows):
        task_id = rows.task(rows.case(), assignee="cole")
        with pytest.raises(Conflict, match="claimed by cole"):
            handlers.save_draft(services, actor=CARLA, task_id=task_id, data={"review_notes": "mine"})


class TestNotes:
    def test_a_note_is_kept_trimmed_with_its_author_and_an_event(self, services, rows):
        case_id = rows.case()
        note = handlers.add_note(services, actor=CARLA, case_id=case_id, text="  Daughter is the proxy.\n")
        assert (note.text, note.author, note.at) == ("Daughter is the proxy.", "carla", services.clock.now())
        [event] = handlers.get_case(services, case_id=case_id).events
        assert (event.kind, event.payload) == ("note_added", {"note_id": note.id})

    @pytest.mark.parametrize("text, problem", [("", "Write the note."), (" \n\t ", "Write the note."),
                                               ("x" * 10_001, "Use at most 10,000 characters.")])
    def test_a_blank_or_too_long_note_is_refused_and_nothing_is_added(self, services, rows, text, problem):
        case_id = rows.case()
        with pytest.raises(InvalidInput, match="Write a note of 1 to 10,000 characters.") as refused:
            handlers.add_note(services, actor=CARLA, case_id=case_id, text=text)
        assert refused.value.field_errors == {"text": [problem]}
        detail = handlers.get_case(services, case_id=case_id)
        assert detail.notes == [] and detail.events == []

    def test_a_note_of_exactly_the_limit_is_kept(self, services, rows):
        assert len(handlers.add_note(services, actor=CARLA, case_id=rows.case(), text="x" * 10_000).text) == 10_000

    def test_a_closed_case_still_takes_notes(self, services, rows):
        case_id = rows.case(status=CaseStatus.CANCELLED)
        handlers.add_note(services, actor=CARLA, case_id=case_id, text="Readmitted elsewhere.")
        assert [n.text for n in handlers.get_case(services, case_id=case_id).notes] == ["Readmitted elsewhere."]

    def test_a_user_outside_the_cases_setting_cannot_add_a_note(self, services, rows):
        case_id = rows.case("acute_hospital")
        with pytest.raises(NotFound, match=f"^Case {case_id} does not exist.$"):
            handlers.add_note(services, actor=WES, case_id=case_id, text="Peeking")
        assert handlers.get_case(services, case_id=case_id).notes == []


class TestAdHocTasks:
    @pytest.fixture
    def case_id(self, services):
        deploy_review(services)
        return start_review(services)

    def test_giving_both_a_person_and_a_role_is_refused(self, services, case_id):
        with pytest.raises(InvalidInput) as refused:
            handlers.add_adhoc_task(services, actor=CARLA, case_id=case_id, title="Call the family",
                                    assignee="cole", candidate_role="case_manager")
        assert refused.value.field_errors == {"assignee": ["Give either a person or a role, not both."]}
        assert [t.adhoc for t in open_tasks(services, case_id)] == [False]

    def test_giving_neither_a_person_nor_a_role_is_refused(self, services, case_id):
        with pytest.raises(InvalidInput) as refused:
            handlers.add_adhoc_task(services, actor=CARLA, case_id=case_id, title="Call the family")
        assert refused.value.field_errors == {"assignee": ["Give a person or a role."]}

    def test_every_problem_is_reported_together(self, services, case_id):
        with pytest.raises(InvalidInput) as refused:
            handlers.add_adhoc_task(services, actor=CARLA, case_id=case_id, title=" ", assignee="nobody",
                                    due_at=services.clock.now())
        assert set(refused.value.field_errors) == {"title", "assignee", "due_at"}

    def test_a_task_for_a_person_is_theirs_and_survives_the_case_moving_on(self, services, case_id):
        task = handlers.add_adhoc_task(services, actor=CARLA, case_id=case_id, title="Call the family", assignee="Cole",
                                       due_at=services.clock.now() + timedelta(hours=10))
        assert (task.assignee, task.status, task.adhoc, task.element_id) == ("cole", TaskStatus.CLAIMED, True, "adhoc")
        assert task.at_risk_at == services.clock.now() + timedelta(hours=8)
        [review] = [t for t in open_tasks(services, case_id) if not t.adhoc]
        handlers.complete_task(services, actor=CARLA, task_id=review.id, data=CRITERIA_MET)
        assert [t.id for t in open_tasks(services, case_id)] == [task.id]

    def test_completing_one_needs_an_outcome(self, services, case_id):
        task = handlers.add_adhoc_task(services, actor=CARLA, case_id=case_id, title="Call the family", candidate_role="case_manager")
        with pytest.raises(InvalidInput) as refused:
            handlers.complete_task(services, actor=COLE, task_id=task.id, data={})
        assert refused.value.field_errors == {"outcome": ["This field is required."]}
        done = handlers.complete_task(services, actor=COLE, task_id=task.id, data={"outcome": "Reached the son."})
        assert (done.status, done.completed_by) == (TaskStatus.COMPLETED, "cole")
        [event] = [e for e in handlers.get_case(services, case_id=case_id).events if e.kind == "task_completed"]
        assert event.payload["data"] == {"outcome": "Reached the son."}


class TestWhoSeesWhat:
    def read(self, services, actor, task_id):
        with services.uow(read_only=True) as uow:
            return visible_task(uow, actor, task_id)

    def test_a_supervisor_sees_every_task_of_a_setting_they_cover_whatever_its_role(self, services, rows):
        task_id = rows.task(rows.case(), "Advisor review", role="physician_advisor", assignee="pat")
        task, case = self.read(services, SUE, task_id)
        assert task.id == task_id and case.setting == "acute_hospital"

    def test_a_supervisor_sees_no_task_of_a_setting_they_do_not_cover(self, services, rows):
        task_id = rows.task(rows.case("acute_hospital"), "Advisor review", role="physician_advisor")
        with pytest.raises(NotFound, match=f"^Task {task_id} does not exist.$"):
            self.read(services, WES, task_id)

    def test_the_assignee_sees_their_task_without_its_role(self, services, rows):
        task_id = rows.task(rows.case(), "Admission review", role="case_manager", assignee="pat")
        assert self.read(services, PAT, task_id)[0].assignee == "pat"

    def test_whoever_completed_a_task_still_sees_it(self, services, rows):
        task_id = rows.task(rows.case(), "Advisor review", role="physician_advisor",
                            status=TaskStatus.COMPLETED, completed_by="carla")
        assert self.read(services, CARLA, task_id)[0].completed_by == "carla"

    def test_anyone_else_without_the_role_is_refused_with_whose_task_it_is(self, services, rows):
        task_id = rows.task(rows.case(), "Advisor review", role="physician_advisor",
                            status=TaskStatus.COMPLETED, completed_by="carla")
        with pytest.raises(Forbidden, match=f"Task {task_id} is for the physician_advisor role"):
            self.read(services, COLE, task_id)

    def test_holding_the_role_does_not_open_a_case_outside_the_users_settings(self, services, rows):
        task_id = rows.task(rows.case("acute_hospital"))
        with pytest.raises(NotFound, match=f"^Task {task_id} does not exist.$"):
            self.read(services, User("wes", ["case_manager"], "wes", settings=["workers_comp"]), task_id)

    def test_the_system_reads_any_task(self, services, rows):
        task_id = rows.task(rows.case("workers_comp"), role="adjuster")
        assert self.read(services, None, task_id)[0].id == task_id

    def test_a_missing_task_or_case_is_not_found(self, services, rows):
        with pytest.raises(NotFound, match="Task 99 does not exist."):
            self.read(services, SUE, 99)
        with services.uow(read_only=True) as uow, pytest.raises(NotFound, match="Case 99 does not exist."):
            visible_case(uow, SUE, 99)

    def test_a_user_covering_every_setting_sees_any_case(self, services, rows):
        case_id = rows.case("inpatient_rehab")
        with services.uow(read_only=True) as uow:
            assert visible_case(uow, CARLA, case_id).setting == "inpatient_rehab"
