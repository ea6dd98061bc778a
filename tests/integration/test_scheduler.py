"""The scheduler inside one process, on real databases: claiming with leases, start-up, early wake-ups."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from service import create_app
from service.jobs import TimerScheduler, start_embedded_scheduler, stop_embedded_scheduler
from tests.integration.timer_fleet import REPO, TimerLedger, in_the_future, seed_timers, wait_for
from workflows.model import CaseStatus, FlagReason
from workflows.ports import FlagQuery


@pytest.fixture
def ledger(database_url):
    ledger = TimerLedger(database_url)
    yield ledger
    ledger.close()


def make_app(database_url, **config):
    return create_app({
        "DATABASE_URL": database_url, "SECRET_KEY": "test", "SCHEDULER_ENABLED": False,
        "BPMN_PATH": str(REPO / "tests" / "data" / "timers"), **config,
    })


class TestClaiming:
    def test_concurrent_claimers_get_disjoint_timers_and_nothing_twice(self, database_url):
        seed_timers(database_url, count=300, due_at=in_the_future(-60))
        services = make_app(database_url).extensions["casework"]
        claims: dict[str, list[int]] = {}
        barrier = threading.Barrier(3)

        def claimer(owner: str) -> None:
            barrier.wait()
            mine = claims.setdefault(owner, [])
            while True:
                now = services.clock.now()
                with services.uow() as uow:
                    batch = uow.timers.claim(now, owner=owner, lease_until=now + timedelta(minutes=5), limit=20)
                    uow.commit()
                if not batch:
                    return
                mine.extend(timer.id for timer in batch)

        threads = [threading.Thread(target=claimer, args=(f"claimer-{n}",)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        claimed = [timer_id for ids in claims.values() for timer_id in ids]
        assert len(claimed) == 300 and len(set(claimed)) == 300
        with services.uow() as uow:
            assert uow.timers.claim(services.clock.now(), owner="late", lease_until=services.clock.now(), limit=10) == []

    def test_a_claim_passes_over_back_off_running_leases_and_inactive_cases(self, database_url):
        [backing_off, leased, suspended, expired, firable] = seed_timers(database_url, count=5, due_at=in_the_future(-60))
        services = make_app(database_url).extensions["casework"]
        now = services.clock.now()
        with services.uow() as uow:
            timers = {timer.case_id: timer for timer in uow.timers.due(now, limit=10)}
            timers[backing_off].retry_at = now + timedelta(minutes=1)
            timers[leased].lease_owner, timers[leased].lease_expires_at = "other", now + timedelta(minutes=1)
            timers[expired].lease_owner, timers[expired].lease_expires_at = "crashed", now - timedelta(seconds=1)
            for timer in timers.values():
                uow.timers.update(timer)
            case = uow.cases.get(suspended)
            case.status = CaseStatus.SUSPENDED
            uow.cases.save(case)
            uow.commit()
        with services.uow() as uow:
            claimed = uow.timers.claim(now, owner="me", lease_until=now + timedelta(minutes=1), limit=10)
            uow.commit()
        assert sorted(timer.case_id for timer in claimed) == sorted([expired, firable])
        assert {timer.lease_owner for timer in claimed} == {"me"}
        with services.uow() as uow:
            assert uow.timers.release_all(owner="me") == 2
            uow.commit()
            assert {t.case_id: t.lease_owner for t in uow.timers.due(now, limit=10)}[firable] is None


class TestEmbeddedScheduler:
    def test_timers_that_fell_due_while_the_server_was_down_fire_at_start_up(self, database_url, ledger):
        case_ids = seed_timers(database_url, count=30, due_at=in_the_future(-3600))
        app = make_app(database_url, TIMER_POLL_SECONDS=3600)
        scheduler = start_embedded_scheduler(app)
        try:
            assert start_embedded_scheduler(app) is scheduler, "one scheduler per process"
            wait_for(lambda: ledger.pending() == 0, timeout=60, what="the overdue timers to fire")
        finally:
            stop_embedded_scheduler()
        assert ledger.fires_per_case(case_ids) == {1: 30}
        assert all(event["late_seconds"] >= 3600 for event in ledger.fired_events())

    def test_a_timer_due_before_the_next_poll_wakes_the_scheduler_early(self, database_url, ledger):
        [case_id] = seed_timers(database_url, count=1, due_at=in_the_future(2))
        app = make_app(database_url, TIMER_POLL_SECONDS=3600)
        scheduler = start_embedded_scheduler(app)
        try:
            wait_for(lambda: ledger.pending() == 0, timeout=60, what="the timer to fire long before the hourly poll")
        finally:
            stop_embedded_scheduler()
        [event] = ledger.fired_events()
        assert event["case_id"] == case_id and event["late_seconds"] >= 0
        assert isinstance(scheduler, TimerScheduler)

    def test_a_stopped_scheduler_hands_its_leases_back(self, database_url, ledger):
        seed_timers(database_url, count=3, due_at=in_the_future(3600))
        app = make_app(database_url, TIMER_POLL_SECONDS=3600)
        scheduler = start_embedded_scheduler(app)
        services = app.extensions["casework"]
        later = services.clock.now() + timedelta(hours=2)
        with services.uow() as uow:
            assert len(uow.timers.claim(later, owner=scheduler.owner, lease_until=later, limit=10)) == 3
            uow.commit()
        stop_embedded_scheduler()
        assert {row["lease_owner"] for row in ledger.timers()} == {None}

    def test_the_poll_runs_the_stuck_case_scan_and_flags_a_timer_that_did_not_fire(self, database_url, ledger):
        # Overdue by more than the grace the scan allows (three poll intervals, here three hours).
        [case_id] = seed_timers(database_url, count=1, due_at=in_the_future(-4 * 3600))
        app = make_app(database_url, TIMER_POLL_SECONDS=3600, SCAN_SECONDS=1)
        services = app.extensions["casework"]
        now = services.clock.now()
        with services.uow() as uow:  # a scheduler that crashed holds the timer for another hour
            [timer] = uow.timers.for_case(case_id)
            timer.lease_owner, timer.lease_expires_at = "crashed", now + timedelta(hours=1)
            uow.timers.update(timer)
            uow.commit()

        def flagged():
            with services.uow(read_only=True) as uow:
                return uow.flags.query(FlagQuery(case_id=case_id))

        start_embedded_scheduler(app)
        try:
            [flag] = wait_for(flagged, timeout=60, what="the scan to flag the timer")
        finally:
            stop_embedded_scheduler()
        assert (flag.reason, flag.subject) == (FlagReason.TIMER_OVERDUE, f"timer:{timer.id}")
        assert ledger.pending() == 1, "the lease of the crashed scheduler still holds"

    def test_under_the_reloader_only_the_serving_process_runs_a_scheduler(self, database_url, monkeypatch):
        app = make_app(database_url, TIMER_POLL_SECONDS=3600)
        monkeypatch.delenv("WERKZEUG_RUN_MAIN", raising=False)
        assert start_embedded_scheduler(app, reloading=True) is None, "the watcher process"
        monkeypatch.setenv("WERKZEUG_RUN_MAIN", "true")
        try:
            assert isinstance(start_embedded_scheduler(app, reloading=True), TimerScheduler)
        finally:
            stop_embedded_scheduler()

