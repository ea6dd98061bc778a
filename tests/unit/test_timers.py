"""Firing timers with leases and back-off, on the in-memory fakes with an injected clock."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.unit.fakes import FakeClock, FakeUnitOfWorkFactory, user
from workflows import catalog, deployment, handlers
from workflows.engine import Engine
from workflows.handlers.timers import TimerPolicy, fire_due_timers
from workflows.model import CaseStatus, TimerStatus
from workflows.services import Services

DATA = Path(__file__).resolve().parent.parent / "data" / "timers"
CARLA = user("carla", "case_manager")
POLICY = TimerPolicy(lease=timedelta(seconds=60), batch_size=10,
                     retry_delays=(timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15)))


@pytest.fixture
def services():
    services = Services(uow=FakeUnitOfWorkFactory(), clock=FakeClock(), engine=Engine(script_time_limit=0.5))
    deployment.deploy_diagram_set(services, diagram_set=catalog.read_diagram_set(DATA), actor=user("dana", "designer"))
    return services


def start_ticking(services, *, rounds=3, fail_on_tick=0):
    return handlers.start_case(services, actor=CARLA, process_id="ticking",
                               data={"ticks": 0, "rounds": rounds, "fail_on_tick": fail_on_tick})


def timers(services, case_id):
    with services.uow(read_only=True) as uow:
        return uow.timers.for_case(case_id, pending_only=False)


def events(services, case_id, kind):
    return [e for e in handlers.get_case(services, case_id=case_id).events if e.kind == kind]


def fire(services, owner="worker-a"):
    return fire_due_timers(services, owner=owner, policy=POLICY)


class TestFiring:
    def test_a_timer_never_fires_before_its_time_and_fires_once_at_it(self, services):
        case = start_ticking(services)
        [timer] = timers(services, case.id)
        assert timer.due_at == case.opened_at + timedelta(hours=1)

        services.clock.advance(minutes=59, seconds=59)
        assert fire(services) == 0
        services.clock.advance(seconds=1)
        assert fire(services) == 1
        assert fire(services, owner="worker-b") == 0

        [fired] = events(services, case.id, "timer_fired")
        assert fired.payload["timer_id"] == timer.id and fired.payload["worker"] == "worker-a"
        assert fired.payload["late_seconds"] == 0

    def test_a_timer_found_late_fires_once_and_says_how_late(self, services):
        case = start_ticking(services, rounds=1)
        services.clock.advance(hours=1, seconds=42)
        assert fire(services) == 1
        [fired] = events(services, case.id, "timer_fired")
        assert fired.payload["late_seconds"] == 42

    def test_the_cases_next_timer_follows_from_the_time_it_fired(self, services):
        case = start_ticking(services, rounds=3)
        for hour in (1, 2, 3):
            services.clock.current = case.opened_at + timedelta(hours=hour)
            assert fire(services) == 1
        rows = timers(services, case.id)
        assert [t.status for t in rows] == [TimerStatus.FIRED] * 3
        assert [t.due_at - case.opened_at for t in rows] == [timedelta(hours=h) for h in (1, 2, 3)]
        assert [t.title for t in handlers.get_case(services, case_id=case.id).open_tasks] == ["Ticks done"]

    def test_a_scheduler_that_was_down_fires_each_missed_tick_once_when_it_comes_back(self, services):
        case = start_ticking(services, rounds=3)
        services.clock.advance(hours=10)
        # Each tick's next timer starts from the moment the previous one fired.
        assert fire(services) == 1
        assert fire(services) == 0
        services.clock.advance(hours=1)
        assert fire(services) == 1
        assert len(events(services, case.id, "timer_fired")) == 2


class TestLeases:
    def test_a_timer_leased_to_another_scheduler_waits_for_the_lease_to_expire(self, services):
        case = start_ticking(services)
        services.clock.advance(hours=1)
        with services.uow() as uow:
            [claimed] = uow.timers.claim(services.clock.now(), owner="crashed", lease_until=services.clock.now() + POLICY.lease, limit=10)
            uow.commit()
        assert claimed.case_id == case.id

        assert fire(services) == 0, "the lease is still running"
        services.clock.advance(seconds=59)
        assert fire(services) == 0
        services.clock.advance(seconds=1)
        assert fire(services) == 1, "an expired lease is taken over"
        [fired] = events(services, case.id, "timer_fired")
        assert fired.payload["worker"] == "worker-a"

    def test_a_scheduler_whose_lease_was_taken_over_does_not_fire_again(self, services):
        from workflows.handlers.timers import _fire_case_timers

        case = start_ticking(services)
        services.clock.advance(hours=1)
        with services.uow() as uow:
            stale_claim = uow.timers.claim(services.clock.now(), owner="slow", lease_until=services.clock.now() + POLICY.lease, limit=10)
            uow.commit()
        services.clock.advance(minutes=2)
        assert fire(services) == 1  # worker-a took the expired lease over and fired
        # The slow scheduler wakes up and tries to fire what it once claimed.
        assert _fire_case_timers(services, case.id, stale_claim, "slow", POLICY) == 0
        assert len(events(services, case.id, "timer_fired")) == 1

    def test_a_timer_of_a_case_that_is_no_longer_active_is_released_unfired(self, services):
        case = start_ticking(services)
        services.clock.advance(hours=1)
        with services.uow() as uow:
            stored = uow.cases.get(case.id)
            stored.status = CaseStatus.ERROR
            uow.cases.save(stored)
            uow.commit()
        assert fire(services) == 0
        [timer] = timers(services, case.id)
        assert timer.status == TimerStatus.PENDING and timer.lease_owner is None


class TestBackOff:
    def test_a_failing_timer_is_retried_after_1_5_and_15_minutes_then_raises_an_incident(self, services):
        case = start_ticking(services, fail_on_tick=1)
        services.clock.advance(hours=1)

        retry_at = []
        for delay in (1, 5, 15):
            assert fire(services) == 0
            [timer] = timers(services, case.id)
            assert timer.status == TimerStatus.PENDING and timer.lease_owner is None
            assert timer.retry_at == services.clock.now() + timedelta(minutes=delay)
            assert "the tick script failed on purpose" in timer.last_error
            retry_at.append(timer.retry_at)
            services.clock.current = timer.retry_at - timedelta(seconds=1)
            assert fire(services) == 0, "no retry before the back-off is over"
            assert timers(services, case.id)[0].attempts == len(retry_at)
            services.clock.current = timer.retry_at

        assert fire(services) == 0
        [timer] = timers(services, case.id)
        assert timer.status == TimerStatus.FAILED and timer.attempts == 4
        detail = handlers.get_case(services, case_id=case.id)
        [incident] = detail.open_incidents
        assert "the tick script failed on purpose" in incident.message
        assert incident.data == {"timer_ids": [timer.id], "attempts": 4}
        assert [e.payload["attempt"] for e in events(services, case.id, "timer_failed")] == [1, 2, 3, 4]
        assert events(services, case.id, "timer_fired") == []
        assert detail.case.status == CaseStatus.ACTIVE, "the case state is untouched"

        services.clock.advance(days=1)
        assert fire(services) == 0, "a failed timer does not spin"
        assert len(events(services, case.id, "timer_failed")) == 4

    def test_a_timer_that_recovers_on_retry_fires_once(self, services):
        case = start_ticking(services, rounds=1, fail_on_tick=1)
        services.clock.advance(hours=1)
        assert fire(services) == 0
        # The cause is fixed (say, a corrected policy value) before the retry.
        with services.uow() as uow:
            stored = uow.cases.get(case.id)
            run = services.engine.resume(services.bundles.get(uow, stored.process_version_id), stored.state)
            for task in run._all_tasks():  # the waiting timer re-inherits its data from the tasks before it
                if "fail_on_tick" in task.data:
                    task.data["fail_on_tick"] = 0
            stored.state = run.serialize()
            uow.cases.save(stored)
            uow.commit()
        services.clock.advance(minutes=1)
        assert fire(services) == 1
        assert len(events(services, case.id, "timer_fired")) == 1


class TestBatches:
    def test_more_due_timers_than_one_batch_all_fire_in_one_poll(self, services):
        cases = [handlers.start_case(services, actor=CARLA, process_id="ticking",
                                     data={"ticks": 0, "rounds": 1, "fail_on_tick": 0}) for _ in range(25)]
        services.clock.advance(hours=1)
        assert fire(services) == 25
        assert all(len(events(services, c.id, "timer_fired")) == 1 for c in cases)
