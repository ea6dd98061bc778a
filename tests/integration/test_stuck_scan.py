"""The stuck-case scan on a real SQLite file and a real PostgreSQL schema."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from service.persistence import UnitOfWorkFactory, make_engine, upgrade_database
from tests.unit.fakes import FakeClock
from workflows.handlers.scan import STUCK_SCAN, ScanResult, run_stuck_scan
from workflows.model import (
    Case,
    CaseFlag,
    CaseStatus,
    FlagReason,
    HumanTask,
    Incident,
    IncidentStatus,
    MessageWait,
    ProcessVersion,
    TaskStatus,
    Timer,
    TimerStatus,
)
from workflows.ports import FlagQuery
from workflows.services import Services

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
EVERY = timedelta(minutes=1)
GRACE = timedelta(minutes=5)
IDLE_DAYS = 7


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


@pytest.fixture
def services(uow_factory) -> Services:
    return Services(uow=uow_factory, clock=FakeClock(T0))


@pytest.fixture
def process(uow_factory) -> ProcessVersion:
    with uow_factory() as uow:
        version = uow.processes.add(ProcessVersion(
            process_id="acute_stay", version=1, content_hash="sha256:acute_stay:1", files={},
            name="Acute stay", setting="acute_hospital", deployed_by="designer", deployed_at=T0,
        ))
        uow.commit()
    return version


def try_scan(services: Services, at: datetime, *, owner: str = "worker-a") -> ScanResult | None:
    services.clock.current = at
    return run_stuck_scan(services, owner=owner, every=EVERY, idle_days=IDLE_DAYS, timer_grace=GRACE)


def scan(services: Services, at: datetime) -> ScanResult:
    result = try_scan(services, at)
    assert result is not None, f"no scan at {at}: the last one was less than {EVERY} before"
    return result


def open_case(uow, process: ProcessVersion, **fields) -> Case:
    values = dict(
        process_version_id=process.id, process_id=process.process_id, state="{}", status=CaseStatus.ACTIVE,
        opened_at=T0, opened_by="cm.alice", setting=process.setting, updated_at=T0,
    )
    return uow.cases.add(Case(**(values | fields)))


def add_task(uow, case: Case, *, title: str = "Admission review", **fields) -> HumanTask:
    values = dict(
        case_id=case.id, task_ref=f"ref-{title}", element_id=title.lower().replace(" ", "_"), title=title,
        candidate_role="case_manager", status=TaskStatus.OPEN, created_at=T0,
    )
    return uow.tasks.add(HumanTask(**(values | fields)))


def add_timer(uow, case: Case, due_at: datetime, **fields) -> Timer:
    return uow.timers.add(Timer(case.id, fields.pop("task_ref", f"timer-{due_at:%H%M}"), "next_review", due_at, **fields))


def add_incident(uow, case: Case, message: str = "Script failed at 'compute_los': NameError") -> Incident:
    return uow.incidents.add(Incident(case.id, "script", message, created_at=hours(1), element_id="compute_los"))


def a_busy_case(uow, process: ProcessVersion) -> Case:
    """A case nothing is wrong with: a task not yet at risk and a timer not yet due."""
    case = open_case(uow, process)
    add_task(uow, case, due_at=hours(48), at_risk_at=hours(40))
    add_timer(uow, case, hours(24))
    return case


def flags(services: Services, **query) -> list[CaseFlag]:
    with services.uow(read_only=True) as uow:
        return uow.flags.query(FlagQuery(limit=10_000, **query))


def flagged_events(services: Services, case_id: int) -> list:
    with services.uow(read_only=True) as uow:
        return [e for e in uow.events.for_case(case_id) if e.kind == "case_flagged"]


class TestWhatTheScanFinds:
    def test_an_open_task_past_its_due_time_is_overdue_since_then_until_it_is_completed(self, services, process):
        with services.uow() as uow:
            case = open_case(uow, process)
            task = add_task(uow, case, due_at=hours(24), at_risk_at=hours(19.2), assignee="cm.bob", status=TaskStatus.CLAIMED)
            add_timer(uow, case, hours(100))
            uow.commit()

        scan(services, hours(25))
        [flag] = flags(services, case_id=case.id)
        assert (flag.reason, flag.subject, flag.since) == (FlagReason.TASK_OVERDUE, f"task:{task.id}", hours(24))
        assert (flag.assignee, flag.candidate_role, flag.element_id, flag.detail) == (
            "cm.bob", "case_manager", "admission_review", "Admission review")
        assert (flag.setting, flag.process_id) == ("acute_hospital", "acute_stay")

        with services.uow() as uow:
            task.status, task.completed_at, task.completed_by = TaskStatus.COMPLETED, hours(26), "cm.bob"
            uow.tasks.update(task)
            uow.commit()
        result = scan(services, hours(27))
        assert flags(services, case_id=case.id) == []
        assert (result.raised, result.cleared) == (0, 1)

    def test_a_task_is_at_risk_from_its_at_risk_time_then_overdue_from_its_due_time(self, services, process):
        with services.uow() as uow:
            case = open_case(uow, process)
            add_task(uow, case, due_at=hours(10), at_risk_at=hours(8))
            add_timer(uow, case, hours(100))
            uow.commit()

        scan(services, hours(7.9))
        assert flags(services, case_id=case.id) == []
        scan(services, hours(8))
        assert [(f.reason, f.since) for f in flags(services, case_id=case.id)] == [(FlagReason.TASK_AT_RISK, hours(8))]
        result = scan(services, hours(10))
        assert [(f.reason, f.since) for f in flags(services, case_id=case.id)] == [(FlagReason.TASK_OVERDUE, hours(10))]
        assert (result.raised, result.cleared) == (1, 1)

    def test_an_overdue_task_beside_an_at_risk_one_flags_each_of_them(self, services, process):
        with services.uow() as uow:
            case = open_case(uow, process)
            late = add_task(uow, case, title="Admission review", due_at=hours(2), at_risk_at=hours(1.6))
            risky = add_task(uow, case, title="Discharge screen", due_at=hours(12), at_risk_at=hours(4))
            uow.commit()

        result = scan(services, hours(5))
        assert {(f.reason, f.subject) for f in flags(services, case_id=case.id)} == {
            (FlagReason.TASK_OVERDUE, f"task:{late.id}"), (FlagReason.TASK_AT_RISK, f"task:{risky.id}"),
        }
        assert result.counts[FlagReason.TASK_OVERDUE] == result.counts[FlagReason.TASK_AT_RISK] == 1

    def test_a_pending_timer_is_overdue_only_once_its_grace_has_passed_and_until_it_fires(self, services, process):
        with services.uow() as uow:
            case = open_case(uow, process)
            timer = add_timer(uow, case, hours(2), attempts=2)
            uow.commit()

        scan(services, hours(2) + GRACE - EVERY)
        assert flags(services, reasons=[FlagReason.TIMER_OVERDUE]) == []
        scan(services, hours(2) + GRACE)
        [flag] = flags(services, reasons=[FlagReason.TIMER_OVERDUE])
        assert (flag.subject, flag.since, flag.element_id) == (f"timer:{timer.id}", hours(2), "next_review")
        assert "next_review" in flag.detail and "2 failed attempts" in flag.detail

        with services.uow() as uow:
            timer.status, timer.fired_at = TimerStatus.FIRED, hours(3)
            uow.timers.update(timer)
            add_task(uow, case, due_at=hours(100))
            uow.commit()
        scan(services, hours(3))
        assert flags(services, case_id=case.id) == []

    def test_an_open_incident_flags_its_case_with_its_message_until_it_is_resolved(self, services, process):
        with services.uow() as uow:
            case = a_busy_case(uow, process)
            incident = add_incident(uow, case, "Script failed at 'compute_los':\n  NameError: name 'gmlos' is not defined")
            uow.commit()

        scan(services, hours(2))
        [flag] = flags(services, case_id=case.id)
        assert (flag.reason, flag.subject, flag.since, flag.element_id) == (
            FlagReason.INCIDENT, f"incident:{incident.id}", hours(1), "compute_los")
        assert flag.detail == "Script failed at 'compute_los': NameError: name 'gmlos' is not defined"

        with services.uow() as uow:
            incident.status, incident.resolution, incident.resolved_at = IncidentStatus.RESOLVED, "retried", hours(3)
            uow.incidents.update(incident)
            uow.commit()
        scan(services, hours(3))
        assert flags(services, case_id=case.id) == []

    def test_an_active_case_with_no_open_task_and_no_pending_timer_is_stalled(self, services, process):
        with services.uow() as uow:
            silent = open_case(uow, process, updated_at=hours(1))
            waiting = open_case(uow, process, updated_at=hours(2))
            uow.messages.replace_for_case(waiting.id, [MessageWait(waiting.id, "payer_decision", "ref-1", "await_payer")])
            busy = a_busy_case(uow, process)
            uow.commit()

        scan(services, hours(3))
        stalled = {f.case_id: f for f in flags(services, reasons=[FlagReason.STALLED])}
        assert set(stalled) == {silent.id, waiting.id}
        assert (stalled[silent.id].subject, stalled[silent.id].since) == ("case", hours(1))
        assert "message" not in stalled[silent.id].detail
        assert stalled[waiting.id].since == hours(2)
        assert "only waits for the message 'payer_decision'" in stalled[waiting.id].detail
        assert busy.id not in stalled

        with services.uow() as uow:
            add_task(uow, uow.cases.get(silent.id), due_at=hours(100))
            uow.commit()
        scan(services, hours(4))
        assert {f.case_id for f in flags(services, reasons=[FlagReason.STALLED])} == {waiting.id}

    def test_a_case_with_no_engine_action_for_the_idle_days_is_idle_until_it_moves(self, services, process):
        with services.uow() as uow:
            case = a_busy_case(uow, process)
            uow.commit()
        idle_from = T0 + timedelta(days=IDLE_DAYS)

        scan(services, idle_from)
        assert flags(services, reasons=[FlagReason.IDLE]) == []
        scan(services, idle_from + EVERY)
        [flag] = flags(services, reasons=[FlagReason.IDLE])
        assert (flag.case_id, flag.subject, flag.since) == (case.id, "case", T0)

        with services.uow() as uow:
            stored = uow.cases.get(case.id)
            stored.updated_at = idle_from
            uow.cases.save(stored)
            uow.commit()
        scan(services, idle_from + 2 * EVERY)
        assert flags(services, reasons=[FlagReason.IDLE]) == []

    def test_suspended_and_closed_cases_are_not_flagged_for_their_tasks_timers_silence_or_age(self, services, process):
        long_ago = T0 - timedelta(days=30)
        with services.uow() as uow:
            held = open_case(uow, process, status=CaseStatus.SUSPENDED, updated_at=long_ago, suspended_at=long_ago)
            add_task(uow, held, due_at=hours(1), at_risk_at=hours(0.8))
            add_timer(uow, held, hours(1))
            open_case(uow, process, status=CaseStatus.COMPLETED, updated_at=long_ago, closed_at=long_ago)
            open_case(uow, process, status=CaseStatus.CANCELLED, updated_at=long_ago, closed_at=long_ago)
            open_case(uow, process, status=CaseStatus.SUSPENDED, updated_at=long_ago)
            uow.commit()

        result = scan(services, hours(5))
        assert result.flagged == 0
        assert flags(services) == []

    def test_an_incident_is_flagged_on_a_suspended_or_failed_case_but_not_on_a_closed_one(self, services, process):
        with services.uow() as uow:
            cases = {status: open_case(uow, process, status=status) for status in CaseStatus}
            for case in cases.values():
                add_incident(uow, case)
            uow.commit()

        scan(services, hours(2))
        flagged = {f.case_id for f in flags(services, reasons=[FlagReason.INCIDENT])}
        assert flagged == {cases[s].id for s in (CaseStatus.ACTIVE, CaseStatus.SUSPENDED, CaseStatus.ERROR)}


class TestFlagsOverTime:
    def test_a_flag_that_still_holds_keeps_its_id_and_since_and_follows_its_task(self, services, process):
        with services.uow() as uow:
            case = open_case(uow, process)
            task = add_task(uow, case, due_at=hours(2))
            uow.commit()
        scan(services, hours(3))
        [first] = flags(services)

        with services.uow() as uow:
            task.assignee, task.status = "cm.bob", TaskStatus.CLAIMED
            uow.tasks.update(task)
            uow.commit()
        result = scan(services, hours(4))
        [again] = flags(services)

        assert (again.id, again.since) == (first.id, hours(2))
        assert (first.detected_at, again.detected_at) == (hours(3), hours(3)), "first found at 3, still standing"
        assert (first.assignee, again.assignee) == (None, "cm.bob")
        assert (result.raised, result.cleared) == (0, 0)

    def test_only_a_newly_raised_flag_leaves_a_case_flagged_event(self, services, process):
        with services.uow() as uow:
            case = open_case(uow, process)
            task = add_task(uow, case, due_at=hours(2))
            uow.commit()

        scan(services, hours(3))
        scan(services, hours(4))
        [flagged] = flagged_events(services, case.id)
        assert (flagged.actor, flagged.at) == ("scheduler", hours(3))
        assert flagged.payload | {"flag_id": None} == {
            "flag_id": None, "reason": "task_overdue", "subject": f"task:{task.id}", "detail": "Admission review",
            "since": hours(2).isoformat(),
        }
        assert flagged.payload["flag_id"] == flags(services)[0].id

        with services.uow() as uow:
            task.due_at = hours(10)
            uow.tasks.update(task)
            uow.commit()
        scan(services, hours(5))
        assert flags(services) == [] and len(flagged_events(services, case.id)) == 1
        scan(services, hours(11))
        [raised_again] = flags(services)
        assert raised_again.since == hours(10)
        assert [e.at for e in flagged_events(services, case.id)] == [hours(3), hours(11)]

    def test_the_result_counts_what_stands_per_reason_and_what_was_raised_and_cleared(self, services, process):
        with services.uow() as uow:
            overdue = open_case(uow, process)
            add_task(uow, overdue, due_at=hours(1))
            stalled = open_case(uow, process, updated_at=hours(0.5))
            a_busy_case(uow, process)
            uow.commit()

        result = scan(services, hours(2))
        assert result.scanned_at == hours(2)
        assert result.counts == {
            FlagReason.TASK_OVERDUE: 1, FlagReason.TASK_AT_RISK: 0, FlagReason.TIMER_OVERDUE: 0,
            FlagReason.INCIDENT: 0, FlagReason.STALLED: 1, FlagReason.IDLE: 0,
        }
        assert (result.flagged, result.raised, result.cleared) == (2, 2, 0)
        assert stalled.id in {f.case_id for f in flags(services, reasons=[FlagReason.STALLED])}


class TestOneScannerPerInterval:
    def test_a_second_scan_within_the_interval_does_nothing_and_the_next_interval_scans(self, services, process):
        with services.uow() as uow:
            case = open_case(uow, process)
            add_task(uow, case, due_at=hours(1))
            uow.commit()

        assert try_scan(services, hours(2), owner="worker-a") is not None
        assert try_scan(services, hours(2), owner="worker-b") is None
        assert try_scan(services, hours(2) + EVERY - timedelta(seconds=1), owner="worker-b") is None
        assert try_scan(services, hours(2) + EVERY, owner="worker-b") is not None
        assert len(flagged_events(services, case.id)) == 1

    def test_schedulers_scanning_at_the_same_moment_scan_once(self, uow_factory, process):
        with uow_factory() as uow:
            cases = [open_case(uow, process) for _ in range(20)]
            for case in cases:
                add_task(uow, case, due_at=hours(1))
            uow.commit()
        start = threading.Barrier(4)
        results, errors = [], []

        def scheduler(owner: str) -> None:
            services = Services(uow=uow_factory, clock=FakeClock(hours(2)))
            start.wait()
            try:
                results.append(run_stuck_scan(services, owner=owner, every=EVERY, idle_days=IDLE_DAYS, timer_grace=GRACE))
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=scheduler, args=(f"worker-{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert errors == []
        assert sum(result is not None for result in results) == 1 and len(results) == 4
        services = Services(uow=uow_factory, clock=FakeClock(hours(2)))
        assert len(flags(services)) == 20
        assert all(len(flagged_events(services, case.id)) == 1 for case in cases)

    def test_a_scan_that_fails_leaves_the_mark_for_the_next_poll(self, uow_factory):
        with uow_factory() as uow:
            assert uow.marks.take(STUCK_SCAN, owner="worker-a", now=hours(1), every=EVERY)
        with uow_factory() as uow:
            assert uow.marks.take(STUCK_SCAN, owner="worker-b", now=hours(1), every=EVERY)
            uow.commit()
        with uow_factory() as uow:
            assert not uow.marks.take(STUCK_SCAN, owner="worker-a", now=hours(1), every=EVERY)

    @pytest.mark.postgres
    def test_on_postgresql_a_scheduler_passes_over_a_scan_in_progress_without_waiting(self, postgres_database_url):
        # (SQLite has one writer: there the second scheduler waits for the first's lock, then finds the mark taken.)
        upgrade_database(postgres_database_url)
        uow_factory = UnitOfWorkFactory(make_engine(postgres_database_url))
        self._passes_over_a_scan_in_progress(uow_factory)
        uow_factory.dispose()

    @staticmethod
    def _passes_over_a_scan_in_progress(uow_factory):
        with uow_factory() as uow:
            uow.marks.take(STUCK_SCAN, owner="worker-a", now=hours(1), every=EVERY)
            uow.commit()
        with uow_factory() as running:
            assert running.marks.take(STUCK_SCAN, owner="worker-a", now=hours(2), every=EVERY)
            with uow_factory() as other:
                other.connection.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
                assert not other.marks.take(STUCK_SCAN, owner="worker-b", now=hours(2), every=EVERY)


class TestDashboardReads:
    @pytest.fixture
    def standing(self, uow_factory, process):
        """Five flags across two settings, two processes and two assignees."""
        with uow_factory() as uow:
            rehab = uow.processes.add(ProcessVersion(
                process_id="irf_stay", version=1, content_hash="sha256:irf", files={}, name="IRF stay",
                setting="inpatient_rehab", deployed_by="designer", deployed_at=T0,
            ))
            acute_a, acute_b, irf = open_case(uow, process), open_case(uow, process), open_case(uow, rehab)
            found = [
                CaseFlag(acute_a.id, FlagReason.TASK_OVERDUE, "task:1", hours(3), hours(9), "acute_hospital", "acute_stay", assignee="cm.bob"),
                CaseFlag(acute_a.id, FlagReason.IDLE, "case", hours(1), hours(9), "acute_hospital", "acute_stay"),
                CaseFlag(acute_b.id, FlagReason.TASK_OVERDUE, "task:2", hours(2), hours(9), "acute_hospital", "acute_stay", assignee="cm.eve"),
                CaseFlag(irf.id, FlagReason.INCIDENT, "incident:1", hours(5), hours(9), "inpatient_rehab", "irf_stay"),
                CaseFlag(irf.id, FlagReason.TASK_OVERDUE, "task:3", hours(4), hours(9), "inpatient_rehab", "irf_stay", assignee="cm.bob"),
            ]
            uow.flags.replace_all(found, now=hours(9))
            uow.commit()
        return {"acute_a": acute_a, "acute_b": acute_b, "irf": irf}

    def test_flags_come_longest_standing_first_a_page_at_a_time(self, services, standing):
        with services.uow(read_only=True) as uow:
            assert [f.since for f in uow.flags.query(FlagQuery())] == [hours(n) for n in (1, 2, 3, 4, 5)]
            assert [f.since for f in uow.flags.query(FlagQuery(limit=2, offset=2))] == [hours(3), hours(4)]
            assert uow.flags.count(FlagQuery(limit=2, offset=2)) == 5

    def test_each_filter_narrows_the_list_and_the_counts(self, services, standing):
        with services.uow(read_only=True) as uow:
            overdue = FlagQuery(reasons=[FlagReason.TASK_OVERDUE])
            assert [f.subject for f in uow.flags.query(overdue)] == ["task:2", "task:1", "task:3"]
            assert uow.flags.count(FlagQuery(settings=["inpatient_rehab"])) == 2
            assert uow.flags.count(FlagQuery(process_id="acute_stay")) == 3
            assert [f.subject for f in uow.flags.query(FlagQuery(assignee="cm.bob"))] == ["task:1", "task:3"]
            assert uow.flags.count(FlagQuery(case_id=standing["acute_a"].id)) == 2
            assert uow.flags.count(FlagQuery(reasons=[FlagReason.TASK_OVERDUE], settings=["acute_hospital"], assignee="cm.eve")) == 1

    def test_counts_per_reason_and_per_setting(self, services, standing):
        with services.uow(read_only=True) as uow:
            assert uow.flags.count_by_reason(FlagQuery()) == {
                FlagReason.TASK_OVERDUE: 3, FlagReason.TASK_AT_RISK: 0, FlagReason.TIMER_OVERDUE: 0,
                FlagReason.INCIDENT: 1, FlagReason.STALLED: 0, FlagReason.IDLE: 1,
            }
            assert uow.flags.count_by_setting(FlagQuery()) == {"acute_hospital": 3, "inpatient_rehab": 2}
            assert uow.flags.count_by_setting(FlagQuery(reasons=[FlagReason.TASK_OVERDUE])) == {
                "acute_hospital": 2, "inpatient_rehab": 1}
            assert uow.flags.count_by_reason(FlagQuery(settings=["inpatient_rehab"]))[FlagReason.INCIDENT] == 1


class TestScale:
    """The scan is a fixed handful of set-based statements, however many cases there are."""

    @staticmethod
    def statements_of_scan(services: Services, at: datetime) -> tuple[int, ScanResult]:
        engine = services.uow.engine
        statements = []

        def count(conn, cursor, statement, parameters, context, executemany) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            result = scan(services, at)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(statements), result

    @staticmethod
    def add_cases(uow_factory, process, *, busy: int, stuck: int) -> None:
        with uow_factory() as uow:
            for _ in range(busy):
                a_busy_case(uow, process)
            for n in range(stuck):
                case = open_case(uow, process, updated_at=T0 - timedelta(days=30))
                if n % 3 == 0:
                    add_task(uow, case, due_at=hours(1))
                elif n % 3 == 1:
                    add_incident(uow, case)
            uow.commit()

    def test_thousands_of_cases_cost_no_more_statements_than_a_handful(self, services, uow_factory, process):
        scan(services, T0)  # the very first scan creates the mark; later ones move it
        self.add_cases(uow_factory, process, busy=10, stuck=6)
        first_small, raised_small = self.statements_of_scan(services, hours(2))
        steady_small, _ = self.statements_of_scan(services, hours(3))

        self.add_cases(uow_factory, process, busy=2_000, stuck=1_500)
        first_large, raised_large = self.statements_of_scan(services, hours(4))
        steady_large, result = self.statements_of_scan(services, hours(5))

        assert result.counts == {
            FlagReason.TASK_OVERDUE: 502, FlagReason.TASK_AT_RISK: 0, FlagReason.TIMER_OVERDUE: 0,
            FlagReason.INCIDENT: 502, FlagReason.STALLED: 1_004, FlagReason.IDLE: 1_506,
        }
        assert (raised_large.raised, result.raised, result.cleared) == (3_500, 0, 0)
        assert steady_large == steady_small

        # New flags and their audit events are written many rows to a statement: raising
        # 3,500 flags costs a few statements more than raising 14, not 3,500 more.
        assert raised_small.raised == 14
        assert first_large - first_small <= 10, (first_small, first_large)
