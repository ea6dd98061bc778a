"""Scheduler processes against one database: every timer fires exactly once, even across a crash.

These start real `casework run` and `casework worker` processes (DESIGN §6); what
happened is read back from the timer rows and the case events.
"""
from __future__ import annotations

import time

import pytest

from tests.integration.timer_fleet import (
    TimerLedger,
    free_port,
    in_the_future,
    scheduler_started,
    seed_timers,
    start,
    wait_for,
)


@pytest.fixture
def ledger(database_url):
    ledger = TimerLedger(database_url)
    yield ledger
    ledger.close()


@pytest.fixture
def processes():
    started = []
    yield started
    for process in started:
        process.stop()


def web_ready(port: int):
    import urllib.request

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False
    return ready


@pytest.mark.postgres
def test_2000_timers_due_at_once_fire_exactly_once_across_two_workers_and_a_web_process(
    postgres_database_url, processes, tmp_path
):
    database_url = postgres_database_url
    settings = dict(timer_poll_seconds=1, timer_lease_seconds=30, timer_batch_size=50, scan_seconds=3600)
    port = free_port()
    processes.append(start("web", ["run", "--port", str(port)], database_url=database_url, workdir=tmp_path, **settings))
    processes.append(start("worker-1", ["worker"], database_url=database_url, workdir=tmp_path, **settings))
    processes.append(start("worker-2", ["worker"], database_url=database_url, workdir=tmp_path, **settings))
    wait_for(web_ready(port), timeout=120, what="the web process to serve", processes=processes)
    for process in processes:
        wait_for(lambda: scheduler_started(process), timeout=120, what=f"{process.name}'s scheduler", processes=processes)

    # All three schedulers are polling; the 2,000 timers fall due together a few seconds from now.
    case_ids = seed_timers(database_url, count=2000, due_at=in_the_future(8))
    ledger = TimerLedger(database_url)

    wait_for(lambda: ledger.pending() == 0, timeout=240, interval=0.5, what="every timer to fire", processes=processes)
    time.sleep(2)  # anything that would fire twice has had its chance

    assert ledger.fires_per_case(case_ids) == {1: 2000}, "0 double fires, 0 missed"
    events = ledger.fired_events()
    assert len(events) == 2000 and len({e["timer_id"] for e in events}) == 2000
    assert all(e["late_seconds"] >= 0 for e in events), "none fired before its time"
    pids = {str(p.pid) for p in processes}
    workers = {e["worker"].split(":")[1] for e in events}
    assert workers <= pids
    assert len(workers) >= 2, f"the load was shared: {workers}"
    print({p.name: sum(1 for e in events if e["worker"].split(":")[1] == str(p.pid)) for p in processes})
    ledger.close()


def test_a_killed_workers_leased_timers_are_taken_over_after_the_lease_and_fire_once(
    database_url, ledger, processes, tmp_path
):
    case_ids = seed_timers(database_url, count=600, due_at=in_the_future(-1))
    lease_seconds = 8
    settings = dict(timer_poll_seconds=1, timer_lease_seconds=lease_seconds, timer_batch_size=100, scan_seconds=3600)
    first = start("worker-a", ["worker"], database_url=database_url, workdir=tmp_path, **settings)
    processes.append(first)

    def leased_by_first():
        held = [row for row in ledger.timers() if row["status"] == "pending" and (row["lease_owner"] or "").split(":")[1:2] == [str(first.pid)]]
        return held if held and any(row["status"] == "fired" for row in ledger.timers()) else None

    wait_for(leased_by_first, timeout=60, interval=0.02, what="worker-a to hold leases mid-way", processes=processes)
    first.kill()
    held = {row["id"]: row for row in leased_by_first() or []}
    assert held, "worker-a held leases when it was killed"
    fired_before = {e["timer_id"] for e in ledger.fired_events()}

    second = start("worker-b", ["worker"], database_url=database_url, workdir=tmp_path, **settings)
    processes.append(second)
    wait_for(lambda: ledger.pending() == 0, timeout=120, interval=0.25, what="every timer to fire", processes=[second])
    time.sleep(1)

    assert ledger.fires_per_case(case_ids) == {1: 600}, "nothing lost, nothing fired twice"
    by_timer = {e["timer_id"]: e for e in ledger.fired_events()}
    for timer_id, row in held.items():
        event = by_timer[timer_id]
        assert event["worker"].split(":")[1] == str(second.pid), "a timer worker-a held was fired by worker-b"
        assert event["at"] >= row["lease_expires_at"], "and only after worker-a's lease expired"
    assert not (fired_before & set(held)), "a timer worker-a fired is not among the ones it still held"
    second.stop()
    assert second.popen.returncode == 0, f"SIGTERM stops a worker cleanly:\n{second.output()[-2000:]}"
    assert "stopped" in second.output()
    print(f"worker-a fired {len(fired_before)} before the kill and held {len(held)}; worker-b fired the rest")
