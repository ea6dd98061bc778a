"""The use cases against in-memory fakes: one transaction per action, incidents on failure."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.unit.fakes import FakeClock, FakeUnitOfWorkFactory, user
from tests.unit.test_engine import SCRIPT_PROCESS
from workflows import catalog, deployment, handlers
from workflows.engine import Engine
from workflows.errors import Conflict, DiagramError, EngineFailure, Forbidden, InvalidInput
from workflows.model import CaseStatus, TaskStatus, TimerStatus
from workflows.services import Services

DATA = Path(__file__).resolve().parent.parent / "data" / "engine"
DESIGNER = user("dana", "designer")
CARLA = user("carla", "case_manager")
SUE = user("sue", "supervisor")


@pytest.fixture
def services():
    return Services(uow=FakeUnitOfWorkFactory(), clock=FakeClock(), engine=Engine(script_time_limit=0.5))


def deploy(services, name="engine", files=None):
    diagram_set = catalog.DiagramSet(name, files) if files else catalog.read_diagram_set(DATA, name=name)
    return deployment.deploy_diagram_set(services, diagram_set=diagram_set, actor=DESIGNER)


def the_open_task(services, case_id):
    [task] = handlers.get_case(services, case_id=case_id).open_tasks
    return task


class TestDeploying:
    def test_each_process_of_a_set_becomes_version_one_then_two_when_changed(self, services):
        assert sorted((v.process_id, v.version) for v in deploy(services)) == [("payer_wait", 1), ("review_loop", 1)]
        files = dict(catalog.read_diagram_set(DATA).files)
        files["review_loop.bpmn"] = files["review_loop.bpmn"].replace(b"Count reviews", b"Count the reviews")
        assert sorted((v.process_id, v.version) for v in deploy(services, files=files)) == [("payer_wait", 2), ("review_loop", 2)]

    def test_a_case_manager_cannot_deploy(self, services):
        with pytest.raises(Forbidden):
            deployment.deploy_diagram_set(services, diagram_set=catalog.read_diagram_set(DATA), actor=CARLA)

    def test_a_set_with_problems_deploys_nothing(self, services):
        with pytest.raises(DiagramError):
            deploy(services, "broken", {"a.bpmn": b"<not-xml"})
        assert deployment.list_process_versions(services) == []


class TestWorkingTasks:
    def test_a_task_completed_twice_is_a_conflict_and_the_case_moves_once(self, services):
        deploy(services)
        case = handlers.start_case(services, actor=CARLA, process_id="review_loop", data={"reviews": 0, "discharged": False})
        task = the_open_task(services, case.id)
        handlers.complete_task(services, actor=CARLA, task_id=task.id, data={"note": 1})
        with pytest.raises(Conflict, match="already completed by carla"):
            handlers.complete_task(services, actor=CARLA, task_id=task.id, data={"note": 2})
        detail = handlers.get_case(services, case_id=case.id)
        assert detail.case.data["reviews"] == 1 and detail.case.version == 2

    def test_invalid_form_data_changes_nothing(self, services):
        deploy(services)
        case = handlers.start_case(services, actor=CARLA, process_id="review_loop", data={"reviews": 0, "discharged": False})
        task = the_open_task(services, case.id)
        with pytest.raises(InvalidInput) as refused:
            handlers.complete_task(services, actor=CARLA, task_id=task.id, data={"note": "three"})
        assert refused.value.field_errors == {"note": ["'three' is not of type 'integer'"]}
        assert handlers.get_case(services, case_id=case.id).case.version == 1

    def test_a_failing_script_rolls_back_and_records_an_incident(self, services):
        deploy(services, "scripted", {"s.bpmn": SCRIPT_PROCESS.replace("{script}", "ratio = 1 / 0").encode()})
        case = handlers.start_case(services, actor=SUE, process_id="scripted")
        task = the_open_task(services, case.id)
        with pytest.raises(EngineFailure) as failed:
            handlers.complete_task(services, actor=SUE, task_id=task.id, data={"typed": "by hand"})
        detail = handlers.get_case(services, case_id=case.id)
        assert detail.case.version == 1 and detail.open_tasks[0].status == TaskStatus.OPEN
        [incident] = detail.open_incidents
        assert incident.id == failed.value.details["incident_id"]
        assert incident.data == {"task_id": task.id, "submitted": {"typed": "by hand"}}

    def test_cancelling_needs_a_supervisor_and_a_reason_and_closes_everything(self, services):
        deploy(services)
        case = handlers.start_case(services, actor=CARLA, process_id="payer_wait")
        with pytest.raises(Forbidden):
            handlers.cancel_case(services, actor=CARLA, case_id=case.id, reason="duplicate")
        with pytest.raises(InvalidInput):
            handlers.cancel_case(services, actor=SUE, case_id=case.id, reason=" ")
        handlers.cancel_case(services, actor=SUE, case_id=case.id, reason="Duplicate referral")
        detail = handlers.get_case(services, case_id=case.id)
        assert detail.case.status == CaseStatus.CANCELLED and detail.open_tasks == []
        assert detail.events[-2].kind == "case_cancelled" and detail.events[-2].payload == {"reason": "Duplicate referral"}


class TestTimers:
    def test_the_scheduler_fires_a_due_timer_once_and_never_early(self, services):
        deploy(services)
        case = handlers.start_case(services, actor=CARLA, process_id="payer_wait")
        handlers.complete_task(services, actor=CARLA, task_id=the_open_task(services, case.id).id, data={})
        services.clock.advance(hours=23, minutes=59)
        assert handlers.fire_due_timers(services) == 0
        services.clock.advance(minutes=1)
        assert handlers.fire_due_timers(services) == 1
        assert handlers.fire_due_timers(services) == 0
        with services.uow(read_only=True) as uow:
            [timer] = uow.timers.for_case(case.id, pending_only=False)
        assert timer.status == TimerStatus.FIRED and timer.fired_at == services.clock.now()
        fired = [e for e in handlers.get_case(services, case_id=case.id).events if e.kind == "timer_fired"]
        assert [e.actor for e in fired] == ["scheduler"]

    def test_due_dates_follow_the_tasks_due_rule(self, services):
        deploy(services)
        case = handlers.start_case(services, actor=CARLA, process_id="review_loop", data={"reviews": 0, "discharged": False})
        task = the_open_task(services, case.id)
        assert task.due_at == case.opened_at + timedelta(days=1)
        assert task.at_risk_at == case.opened_at + timedelta(hours=19, minutes=12)
