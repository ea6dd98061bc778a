"""The stuck-case scan handler against in-memory fakes: one scan per interval, events for new flags only."""
from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.fakes import FakeClock, FakeUnitOfWorkFactory
from workflows.handlers.scan import run_stuck_scan
from workflows.model import Case, CaseStatus, FlagReason, HumanTask, TaskStatus
from workflows.ports import FlagQuery
from workflows.services import Services

EVERY = timedelta(minutes=1)


@pytest.fixture
def services():
    return Services(uow=FakeUnitOfWorkFactory(), clock=FakeClock())


def scan(services, *, owner="worker-a"):
    return run_stuck_scan(services, owner=owner, every=EVERY, idle_days=7, timer_grace=timedelta(minutes=5))


def a_case_with_a_task_due_in(services, hours: float) -> tuple[Case, HumanTask]:
    now = services.clock.now()
    with services.uow() as uow:
        case = uow.cases.add(Case(1, "acute_stay", "{}", CaseStatus.ACTIVE, now, "cm.alice", setting="acute_hospital", updated_at=now))
        task = uow.tasks.add(HumanTask(case.id, "ref-1", "admission_review", "Admission review", "case_manager",
                                       TaskStatus.OPEN, now, due_at=now + timedelta(hours=hours)))
        uow.commit()
    return case, task


def flagged_events(services, case_id):
    with services.uow(read_only=True) as uow:
        return [e for e in uow.events.for_case(case_id) if e.kind == "case_flagged"]


class TestStuckScan:
    def test_a_scheduler_that_comes_within_the_interval_does_not_scan(self, services):
        assert scan(services, owner="worker-a") is not None
        assert scan(services, owner="worker-b") is None
        services.clock.advance(minutes=1)
        assert scan(services, owner="worker-b") is not None

    def test_a_flag_raised_once_leaves_one_event_and_keeps_its_since(self, services):
        case, task = a_case_with_a_task_due_in(services, 1)
        services.clock.advance(hours=2)
        first = scan(services)
        services.clock.advance(hours=1)
        second = scan(services)

        assert (first.raised, second.raised, second.counts[FlagReason.TASK_OVERDUE]) == (1, 0, 1)
        [event] = flagged_events(services, case.id)
        assert (event.actor, event.payload["reason"], event.payload["subject"]) == ("scheduler", "task_overdue", f"task:{task.id}")
        with services.uow(read_only=True) as uow:
            [flag] = uow.flags.query(FlagQuery())
        assert flag.since == task.due_at

    def test_a_flag_that_no_longer_holds_is_cleared_without_an_event(self, services):
        case, task = a_case_with_a_task_due_in(services, 1)
        services.clock.advance(hours=2)
        scan(services)
        with services.uow() as uow:
            task.status = TaskStatus.COMPLETED
            uow.tasks.update(task)
            uow.tasks.add(HumanTask(case.id, "ref-2", "next", "Next", "case_manager", TaskStatus.OPEN, services.clock.now()))
            uow.commit()
        services.clock.advance(minutes=1)

        result = scan(services)
        assert (result.flagged, result.cleared) == (0, 1)
        assert len(flagged_events(services, case.id)) == 1
