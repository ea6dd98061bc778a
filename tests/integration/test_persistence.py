"""The SQLAlchemy repositories and unit of work, on a real SQLite file and a real PostgreSQL schema."""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from service.persistence import (
    SqlCaseEventRepository,
    UnitOfWorkFactory,
    default_sqlite_url,
    make_engine,
    metadata,
    normalise_url,
    upgrade_database,
)
from workflows.errors import NotFound, StaleCase
from workflows.model import (
    ApiToken,
    Case,
    CaseEvent,
    CaseStatus,
    HumanTask,
    Incident,
    IncidentStatus,
    MessageWait,
    ProcessVersion,
    TaskStatus,
    Timer,
    TimerStatus,
    User,
)
from workflows.ports import TaskQuery

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
TABLES = {
    "process_version", "process_file", "case_record", "human_task", "timer", "message_wait",
    "case_event", "incident", "app_user", "user_role", "user_setting", "note", "case_flag", "scheduler_mark",
    "process_draft", "draft_file", "api_token", "case_read",
}
HEAD = "0009"


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


def deploy(uow, *, process_id: str = "acute_stay", version: int = 1, files=None) -> ProcessVersion:
    return uow.processes.add(ProcessVersion(
        process_id=process_id, version=version, content_hash=f"sha256:{process_id}:{version}",
        files=files if files is not None else {"stay.bpmn": b"<definitions/>"},
        name="Acute stay", setting="acute_hospital", deployed_by="designer", deployed_at=T0,
    ))


def open_case(uow, process: ProcessVersion, **fields) -> Case:
    values = dict(
        process_version_id=process.id, process_id=process.process_id, state='{"serializer_version": "1.4"}',
        status=CaseStatus.ACTIVE, opened_at=T0, opened_by="cm.alice",
    )
    return uow.cases.add(Case(**(values | fields)))


@pytest.fixture
def case_id(uow_factory) -> int:
    with uow_factory() as uow:
        case = open_case(uow, deploy(uow))
        uow.commit()
    return case.id


class TestMigrations:
    def test_upgrading_creates_every_table_and_upgrading_again_changes_nothing(self, database_url):
        upgrade_database(database_url)
        upgrade_database(database_url)

        engine = make_engine(database_url)
        try:
            with engine.connect() as connection:
                assert set(inspect(connection).get_table_names()) == TABLES | {"alembic_version"}
                assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
                if connection.dialect.name == "postgresql":
                    # Each test has its own schema: the tables, Alembic's included, must land in it.
                    assert connection.execute(text("SELECT current_schema()")).scalar().startswith("t_")
                    # A case's state, rewritten on every action, is compressed with lz4 (migration 0009).
                    assert connection.execute(text(
                        "SELECT attcompression FROM pg_attribute WHERE attrelid = 'case_record'::regclass"
                        " AND attname = 'state'")).scalar() == "l"
        finally:
            engine.dispose()

    def test_servers_starting_together_can_all_upgrade_the_same_database(self, database_url):
        errors = []

        def upgrade() -> None:
            try:
                upgrade_database(database_url)
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=upgrade) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert errors == []
        engine = make_engine(database_url)
        try:
            with engine.connect() as connection:
                assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
        finally:
            engine.dispose()

    # SQLite cannot reflect the inbox's expression indexes (due_at IS NULL, ...), so Alembic skips them
    # there, with a warning; tests/integration/test_inbox_queries.py checks them by name and WHERE.
    @pytest.mark.filterwarnings("ignore:.*expression-based index")
    def test_the_migrations_build_exactly_the_schema_declared_in_tables_py(self, database_url):
        upgrade_database(database_url)

        engine = make_engine(database_url)
        try:
            with engine.connect() as connection:
                context = MigrationContext.configure(connection, opts={"compare_type": True})
                assert compare_metadata(context, metadata) == []
        finally:
            engine.dispose()


    @pytest.mark.parametrize("table", ["case_event", "case_read"])
    def test_the_database_refuses_to_change_or_delete_audit_rows(self, uow_factory, case_id, table):
        columns = {"case_event": "kind, payload", "case_read": "channel, what"}[table]
        values = {"case_event": "'note_added', '{}'", "case_read": "'page', 'case page'"}[table]
        engine = uow_factory.engine
        with engine.begin() as connection:
            connection.execute(text(f"INSERT INTO {table} (case_id, at, actor, {columns}) "
                                    f"VALUES ({case_id}, CURRENT_TIMESTAMP, 'cm.alice', {values})"))
        for statement in (f"UPDATE {table} SET actor = 'someone.else'", f"DELETE FROM {table}"):
            with pytest.raises(DBAPIError, match="append-only"):
                with engine.begin() as connection:
                    connection.execute(text(statement))
        with engine.connect() as connection:
            assert connection.execute(text(f"SELECT actor FROM {table}")).scalars().all() == ["cm.alice"]


class TestRoundTrip:
    def test_a_process_version_keeps_its_files_byte_for_byte(self, uow_factory):
        files = {"stay.bpmn": "<définitions/>\r\n".encode(), "forms/review.schema.json": bytes(range(256))}
        with uow_factory() as uow:
            first = deploy(uow, files=files)
            second = deploy(uow, version=2, files={})
            deploy(uow, process_id="rehab_stay")
            uow.commit()

        with uow_factory(read_only=True) as uow:
            assert uow.processes.get(first.id) == first
            assert uow.processes.get(first.id).files["forms/review.schema.json"] == bytes(range(256))
            assert uow.processes.latest("acute_stay") == second
            assert [p.version for p in uow.processes.list(process_id="acute_stay")] == [1, 2]
            assert [p.process_id for p in uow.processes.list()] == ["acute_stay", "acute_stay", "rehab_stay"]
            assert uow.processes.latest("no_such_process") is None

    def test_the_same_process_version_cannot_be_deployed_twice(self, uow_factory):
        with uow_factory() as uow:
            deploy(uow)
            with pytest.raises(IntegrityError):
                deploy(uow)

    def test_a_case_comes_back_as_stored_with_its_times_in_utc(self, uow_factory):
        eastern = timezone(timedelta(hours=-5))
        with uow_factory() as uow:
            case = open_case(
                uow, deploy(uow), subject_name="Jordan Example", subject_ref="MRN-0042", setting="acute_hospital",
                priority=1, data={"payer": "Medicare", "midnights": 2, "codes": ["I50.9"], "flags": {"obs": None}},
                opened_at=datetime(2025, 3, 1, 3, 0, tzinfo=eastern), state="x" * 200_000,
            )
            uow.commit()

        with uow_factory(read_only=True) as uow:
            stored = uow.cases.get(case.id)
        assert stored == case
        assert stored.status is CaseStatus.ACTIVE
        assert stored.opened_at == T0 and stored.opened_at.tzinfo == timezone.utc
        assert stored.version == 1

    def test_a_naive_datetime_is_refused(self, uow_factory):
        with uow_factory() as uow:
            with pytest.raises(StatementError, match="has no time zone"):
                open_case(uow, deploy(uow), opened_at=datetime(2025, 3, 1, 8, 0))

    def test_cases_are_listed_newest_first_by_status_and_process(self, uow_factory):
        with uow_factory() as uow:
            acute, rehab = deploy(uow), deploy(uow, process_id="rehab_stay")
            older = open_case(uow, acute)
            newer = open_case(uow, acute, opened_at=hours(1))
            open_case(uow, acute, status=CaseStatus.COMPLETED, opened_at=hours(2))
            other = open_case(uow, rehab, opened_at=hours(3))
            uow.commit()

            assert [c.id for c in uow.cases.list(status="active", process_id="acute_stay")] == [newer.id, older.id]
            assert [c.id for c in uow.cases.list(status=CaseStatus.ACTIVE, limit=2)] == [other.id, newer.id]
            assert [c.id for c in uow.cases.list(status="active", limit=2, offset=2)] == [older.id]

    def test_a_human_task_comes_back_as_stored(self, uow_factory, case_id):
        with uow_factory() as uow:
            task = uow.tasks.add(HumanTask(
                case_id=case_id, task_ref="6f1c", element_id="admission_review", title="Admission review",
                candidate_role="case_manager", status=TaskStatus.OPEN, created_at=T0, priority=2,
                due_at=hours(24), at_risk_at=hours(19.2), form_ref="forms/review.schema.json",
                ui_form_ref="forms/review.uischema.json", instructions="Check the order type.",
            ))
            uow.commit()
        with uow_factory() as uow:
            stored = uow.tasks.get(task.id)
            assert stored == task and stored.status is TaskStatus.OPEN and stored.due_at.tzinfo == timezone.utc
            stored.status, stored.assignee = TaskStatus.COMPLETED, "cm.alice"
            stored.completed_at, stored.completed_by = hours(2), "cm.alice"
            uow.tasks.update(stored)
            uow.commit()
        with uow_factory(read_only=True) as uow:
            assert uow.tasks.get(task.id) == stored
            assert uow.tasks.with_case(task.id) == (stored, uow.cases.get(case_id))
            assert uow.tasks.with_case(task.id)[1].status is CaseStatus.ACTIVE
            assert uow.tasks.with_case(task.id + 1) is None
            assert uow.tasks.for_case(case_id) == []
            assert uow.tasks.for_case(case_id, open_only=False) == [stored]

    def test_updating_a_task_that_does_not_exist_is_reported(self, uow_factory, case_id):
        ghost = HumanTask(case_id=case_id, task_ref="x", element_id="x", title="x", candidate_role=None,
                          status=TaskStatus.OPEN, created_at=T0, id=9999)
        with uow_factory() as uow:
            with pytest.raises(NotFound, match="Task 9999 does not exist"):
                uow.tasks.update(ghost)

    def test_a_task_is_never_listed_twice_for_the_same_engine_task(self, uow_factory, case_id):
        def task():
            return HumanTask(case_id=case_id, task_ref="6f1c", element_id="review", title="Review",
                             candidate_role="case_manager", status=TaskStatus.OPEN, created_at=T0)

        with uow_factory() as uow:
            uow.tasks.add(task())
            with pytest.raises(IntegrityError):
                uow.tasks.add(task())

    def test_an_incident_comes_back_as_stored_and_can_be_resolved(self, uow_factory, case_id):
        with uow_factory() as uow:
            incident = uow.incidents.add(Incident(
                case_id=case_id, kind="script", message="name 'los' is not defined", created_at=T0,
                element_id="compute_los", task_ref="a1", data={"los": None, "payer": "Medicare"},
            ))
            uow.commit()
        with uow_factory() as uow:
            stored = uow.incidents.get(incident.id)
            assert stored == incident and stored.status is IncidentStatus.OPEN
            assert uow.incidents.for_case(case_id) == [incident]
            stored.status, stored.resolution = IncidentStatus.RESOLVED, "retried"
            stored.resolved_at, stored.resolved_by = hours(1), "sup.bob"
            uow.incidents.update(stored)
            uow.commit()
        with uow_factory(read_only=True) as uow:
            assert uow.incidents.get(incident.id) == stored
            assert uow.incidents.for_case(case_id) == []
            assert uow.incidents.for_case(case_id, open_only=False) == [stored]


class TestOptimisticConcurrency:
    def test_the_second_of_two_writers_that_read_the_same_case_is_refused(self, uow_factory, case_id):
        with uow_factory(read_only=True) as uow:
            first_reader = uow.cases.get(case_id)
        with uow_factory(read_only=True) as uow:
            second_reader = uow.cases.get(case_id)

        with uow_factory() as uow:
            first_reader.state = "first"
            uow.cases.save(first_reader)
            uow.commit()
        assert first_reader.version == 2

        with uow_factory() as uow:
            second_reader.state = "second"
            with pytest.raises(StaleCase, match=f"Case {case_id} was changed by someone else; reload it"):
                uow.cases.save(second_reader)

        with uow_factory(read_only=True) as uow:
            stored = uow.cases.get(case_id)
        assert (stored.state, stored.version) == ("first", 2)

    def test_two_threads_saving_the_same_case_never_lose_an_update(self, uow_factory, case_id):
        start = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def act(name: str) -> None:
            start.wait()
            try:
                with uow_factory() as uow:
                    case = uow.cases.get(case_id)
                    time.sleep(0.2)
                    case.state = name
                    uow.cases.save(case)
                    uow.commit()
                outcomes[name] = "saved"
            except StaleCase:
                outcomes[name] = "stale"
            except Exception as error:  # anything else, "database is locked" above all, fails the test
                outcomes[name] = repr(error)

        threads = [threading.Thread(target=act, args=(name,)) for name in ("alice", "bob")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        with uow_factory(read_only=True) as uow:
            stored = uow.cases.get(case_id)
        if sorted(outcomes.values()) == ["saved", "stale"]:
            winner = next(name for name, outcome in outcomes.items() if outcome == "saved")
            assert (stored.state, stored.version) == (winner, 2)
        else:
            assert sorted(outcomes.values()) == ["saved", "saved"]
            assert stored.version == 3


class TestUnitOfWork:
    def test_work_left_uncommitted_is_rolled_back(self, uow_factory):
        with uow_factory() as uow:
            process = deploy(uow)
        with uow_factory(read_only=True) as uow:
            assert uow.processes.get(process.id) is None

    def test_an_error_inside_the_block_rolls_everything_back(self, uow_factory):
        with pytest.raises(RuntimeError):
            with uow_factory() as uow:
                process = deploy(uow)
                raise RuntimeError("engine failed")
        with uow_factory(read_only=True) as uow:
            assert uow.processes.list() == []
            assert process.id is not None

    def test_only_the_work_before_the_last_commit_is_kept(self, uow_factory):
        with uow_factory() as uow:
            kept = deploy(uow)
            uow.commit()
            dropped = deploy(uow, version=2)
        with uow_factory(read_only=True) as uow:
            assert uow.processes.get(kept.id) == kept
            assert uow.processes.get(dropped.id) is None

    def test_a_read_without_a_snapshot_opens_no_transaction_and_leaves_the_connection_as_it_was(self, uow_factory):
        with uow_factory() as uow:
            kept = deploy(uow)
            uow.commit()
        for _ in range(3):  # the pool hands the same connection back each time
            with uow_factory(read_only=True, snapshot=False) as uow:
                assert uow.processes.get(kept.id) == kept
                assert not _dbapi_in_transaction(uow.connection)
            with uow_factory() as uow:
                assert uow.processes.get(kept.id) == kept
                assert _dbapi_in_transaction(uow.connection)  # an ordinary unit of work still has its transaction
                uow.commit()
        with pytest.raises(ValueError, match="Only a read-only unit of work"):
            uow_factory(snapshot=False)


def _dbapi_in_transaction(connection) -> bool:
    dbapi = connection.connection.dbapi_connection
    if connection.dialect.name == "sqlite":
        return dbapi.in_transaction
    return dbapi.info.transaction_status != dbapi.info.transaction_status.IDLE


class TestTaskQueries:
    @pytest.fixture
    def tasks(self, uow_factory, case_id):
        with uow_factory() as uow:
            other_case = open_case(uow, uow.processes.latest("acute_stay"))

            def add(ref, role, *, status=TaskStatus.OPEN, assignee=None, due=None, created=0, case=case_id):
                return uow.tasks.add(HumanTask(
                    case_id=case, task_ref=ref, element_id=ref, title=ref, candidate_role=role, status=status,
                    assignee=assignee, created_at=hours(created), due_at=None if due is None else hours(due),
                ))

            tasks = {
                "undated": add("undated", "case_manager", created=-5),
                "due_late": add("due_late", "case_manager", due=48),
                "due_soon_newer": add("due_soon_newer", "case_manager", due=24, created=1),
                "due_soon_older": add("due_soon_older", "case_manager", due=24),
                "claimed": add("claimed", "case_manager", status=TaskStatus.CLAIMED, assignee="cm.alice", due=30),
                "advisor": add("advisor", "physician_advisor", due=12),
                "done": add("done", "case_manager", status=TaskStatus.COMPLETED, assignee="cm.alice", due=1),
                "elsewhere": add("elsewhere", "case_manager", due=36, case=other_case.id),
            }
            uow.commit()
        return tasks

    def refs(self, uow_factory, **query) -> list[str]:
        with uow_factory(read_only=True) as uow:
            return [task.task_ref for task in uow.tasks.query(TaskQuery(**query))]

    def test_tasks_come_soonest_due_first_then_oldest_with_undated_last(self, uow_factory, tasks):
        assert self.refs(uow_factory) == [
            "done", "advisor", "due_soon_older", "due_soon_newer", "claimed", "elsewhere", "due_late", "undated",
        ]

    def test_each_filter_narrows_the_list(self, uow_factory, tasks, case_id):
        open_statuses = [TaskStatus.OPEN, TaskStatus.CLAIMED]
        assert self.refs(uow_factory, candidate_roles=["physician_advisor"]) == ["advisor"]
        assert self.refs(uow_factory, candidate_roles=[]) == []
        assert self.refs(uow_factory, assignee="cm.alice") == ["done", "claimed"]
        assert self.refs(uow_factory, assignee="cm.alice", statuses=open_statuses) == ["claimed"]
        assert self.refs(uow_factory, statuses=[TaskStatus.COMPLETED]) == ["done"]
        assert self.refs(uow_factory, case_id=case_id, candidate_roles=["case_manager"], unassigned_only=True) == [
            "due_soon_older", "due_soon_newer", "due_late", "undated",
        ]

    def test_pages_are_cut_from_the_ordered_list_and_the_count_ignores_the_page(self, uow_factory, tasks):
        assert self.refs(uow_factory, limit=2, offset=1) == ["advisor", "due_soon_older"]
        with uow_factory(read_only=True) as uow:
            assert uow.tasks.count(TaskQuery(limit=2, offset=1)) == 8
            assert uow.tasks.count(TaskQuery(statuses=[TaskStatus.OPEN], candidate_roles=["case_manager"])) == 5
            assert uow.tasks.count(TaskQuery(candidate_roles=["nobody"])) == 0

    def test_a_case_lists_its_open_tasks_oldest_first(self, uow_factory, tasks, case_id):
        with uow_factory(read_only=True) as uow:
            assert [t.task_ref for t in uow.tasks.for_case(case_id)] == [
                "undated", "due_late", "due_soon_older", "claimed", "advisor", "due_soon_newer",
            ]
            assert len(uow.tasks.for_case(case_id, open_only=False)) == 7


class TestTimers:
    def test_due_timers_are_the_pending_ones_whose_time_has_come_oldest_first(self, uow_factory, case_id):
        with uow_factory() as uow:
            def add(ref, due, status=TimerStatus.PENDING):
                return uow.timers.add(Timer(case_id=case_id, task_ref=ref, element_id=ref, due_at=hours(due),
                                            status=status))

            at_now, oldest, middle = add("at_now", 10), add("oldest", 1), add("middle", 5)
            add("future", 10.001)
            add("fired", 0, TimerStatus.FIRED)
            add("cancelled", 0, TimerStatus.CANCELLED)
            uow.commit()

        with uow_factory() as uow:
            assert uow.timers.due(hours(10)) == [oldest, middle, at_now]
            assert uow.timers.due(hours(10), limit=2) == [oldest, middle]
            assert uow.timers.due(hours(0.5)) == []

            oldest.status, oldest.attempts, oldest.fired_at = TimerStatus.FIRED, 1, hours(10)
            oldest.lease_owner, oldest.lease_expires_at = "worker-1", hours(10.1)
            uow.timers.update(oldest)
            uow.commit()

        with uow_factory(read_only=True) as uow:
            assert uow.timers.due(hours(10)) == [middle, at_now]
            assert [t.task_ref for t in uow.timers.for_case(case_id)] == ["middle", "at_now", "future"]
            stored = {t.task_ref: t for t in uow.timers.for_case(case_id, pending_only=False)}
            assert stored["oldest"] == oldest and stored["oldest"].lease_expires_at.tzinfo == timezone.utc
            assert stored["fired"].status is TimerStatus.FIRED


class TestMessageWaits:
    def test_replacing_a_cases_waits_leaves_other_cases_alone(self, uow_factory, case_id):
        with uow_factory() as uow:
            other = open_case(uow, uow.processes.latest("acute_stay"))
            uow.messages.replace_for_case(other.id, [MessageWait(other.id, "payer_auth", "o1", "wait_auth")])
            uow.messages.replace_for_case(case_id, [
                MessageWait(case_id, "payer_auth", "a1", "wait_auth", {"auth_ref": "A-17"}),
                MessageWait(case_id, "qio_appeal", "a2", "wait_appeal"),
            ])
            uow.commit()

        with uow_factory() as uow:
            later = MessageWait(case_id, "payer_auth", "a3", "wait_auth", {"auth_ref": "A-18", "level": 2})
            uow.messages.replace_for_case(case_id, [later])
            uow.commit()

        with uow_factory(read_only=True) as uow:
            assert uow.messages.for_case(case_id) == [later]
            assert [(w.case_id, w.correlation) for w in uow.messages.find("payer_auth")] == [
                (other.id, {}), (case_id, {"auth_ref": "A-18", "level": 2}),
            ]
            assert uow.messages.find("qio_appeal") == []


class TestCaseEvents:
    def test_events_come_back_in_the_order_they_were_appended(self, uow_factory, case_id):
        kinds = ["case_opened", "task_claimed", "task_completed", "timer_fired", "note_added"]
        with uow_factory() as uow:
            appended = [
                uow.events.append(CaseEvent(case_id, T0, "cm.alice", kind, {"step": step, "data": {"ok": True}}))
                for step, kind in enumerate(kinds)
            ]
            uow.commit()
        with uow_factory(read_only=True) as uow:
            stored = uow.events.for_case(case_id)
        assert all(event.id is not None for event in stored)
        assert [replace(event, id=None) for event in stored] == appended
        assert [event.kind for event in appended] == kinds

    def test_the_audit_trail_offers_no_way_to_change_or_remove_an_event(self):
        public = {name for name in dir(SqlCaseEventRepository) if not name.startswith("_")}
        # flush writes what was appended; discard forgets what was appended but never written.
        assert public == {"append", "flush", "discard", "for_case"}
        assert not [name for name in dir(SqlCaseEventRepository) if "update" in name or "delete" in name]


class TestUsers:
    def test_users_are_found_by_name_and_id_with_their_roles(self, uow_factory):
        with uow_factory() as uow:
            alice = uow.users.add(User("cm.alice", ["social_worker", "case_manager"], "Alice Example"))
            payer = uow.users.add(User("api.payer", [], active=False))
            uow.commit()
        with uow_factory(read_only=True) as uow:
            assert uow.users.get_by_username("cm.alice") == alice
            assert alice.roles == ["case_manager", "social_worker"]
            assert uow.users.get(payer.id).username == "api.payer"
            assert uow.users.get(payer.id).active is False
            assert uow.users.get(payer.id + 100) is None
            assert uow.users.get_by_username("nobody") is None
            assert [u.username for u in uow.users.list()] == ["api.payer", "cm.alice"]

    def test_updating_a_user_replaces_roles_and_name(self, uow_factory):
        with uow_factory() as uow:
            alice = uow.users.add(User("cm.alice", ["case_manager"]))
            uow.commit()
        with uow_factory() as uow:
            alice.roles, alice.display_name = ["supervisor", "case_manager"], "Alice"
            uow.users.update(alice)
            uow.commit()
        with uow_factory(read_only=True) as uow:
            stored = uow.users.get_by_username("cm.alice")
            assert (stored.roles, stored.display_name) == (["case_manager", "supervisor"], "Alice")

    def test_two_users_cannot_share_a_username(self, uow_factory):
        with uow_factory() as uow:
            uow.users.add(User("cm.alice", []))
            with pytest.raises(IntegrityError):
                uow.users.add(User("cm.alice", []))

    def test_wrong_passwords_are_counted_and_the_last_allowed_one_locks_until_a_good_sign_in_is_refused(
            self, uow_factory):
        with uow_factory() as uow:
            alice = uow.users.add(User("cm.alice", ["case_manager"], password_hash="h"))
            uow.commit()
        lock_until = T0 + timedelta(minutes=15)
        with uow_factory() as uow:
            counted = [uow.users.record_failed_signin(alice.id, now=T0, attempts=3, lock_until=lock_until)
                       for _ in range(4)]
            refused = uow.users.record_good_signin(alice.id, now=T0, checked_hash="h", new_hash=None)
            uow.commit()
        assert counted == [(1, None), (2, None), (0, lock_until), None] and refused is False
        with uow_factory() as uow:
            assert uow.users.get(alice.id).locked_until == lock_until
            # A record read before the lock and written back does not lift it.
            uow.users.update(alice)
            assert uow.users.record_good_signin(alice.id, now=lock_until, checked_hash="h", new_hash="h2") is True
            uow.commit()
        with uow_factory(read_only=True) as uow:
            stored = uow.users.get(alice.id)
        assert (stored.failed_signins, stored.locked_until, stored.password_hash) == (0, None, "h2")

    def test_a_good_sign_in_is_refused_when_the_password_changed_meanwhile_and_unlock_clears_the_lock(
            self, uow_factory):
        with uow_factory() as uow:
            alice = uow.users.add(User("cm.alice", ["case_manager"], password_hash="new"))
            uow.users.record_failed_signin(alice.id, now=T0, attempts=1, lock_until=T0 + timedelta(hours=1))
            uow.commit()
        with uow_factory() as uow:
            assert uow.users.record_good_signin(alice.id, now=T0, checked_hash="new", new_hash=None) is False
            uow.users.unlock(alice.id)
            assert uow.users.record_good_signin(alice.id, now=T0, checked_hash="old", new_hash="x") is False
            assert uow.users.record_good_signin(alice.id, now=T0, checked_hash="new", new_hash=None) is True
            uow.commit()


class TestApiTokens:
    def test_tokens_are_found_by_hash_and_by_user_and_a_revocation_is_stored(self, uow_factory):
        with uow_factory() as uow:
            alice = uow.users.add(User("cm.alice", ["case_manager", "supervisor"]))
            feed = uow.tokens.add(ApiToken(alice.id, "feed", "hash-feed", T0, "admin", roles=["case_manager"],
                                           expires_at=hours(24)))
            other = uow.tokens.add(ApiToken(alice.id, "other", "hash-other", T0, "admin"))
            uow.commit()
        with uow_factory() as uow:
            assert uow.tokens.get_by_hash("hash-feed") == feed and uow.tokens.get_by_hash("nope") is None
            assert uow.tokens.for_user(alice.id) == [feed, other] and other.roles is None
            feed.revoked, feed.revoked_at, feed.revoked_by = True, hours(1), "admin"
            uow.tokens.update(feed)
            uow.commit()

        with uow_factory(read_only=True) as uow:
            assert uow.tokens.get(feed.id) == feed and not feed.usable_at(hours(2))
            assert other.usable_at(hours(2))

    def test_a_token_is_found_with_its_holder_roles_and_settings_in_one_read(self, uow_factory):
        with uow_factory() as uow:
            alice = uow.users.add(User("cm.alice", ["supervisor", "case_manager"],
                                       settings=["workers_comp", "acute_hospital"]))
            bob = uow.users.add(User("bob", []))
            feed = uow.tokens.add(ApiToken(alice.id, "feed", "hash-feed", T0, "admin", roles=["case_manager"]))
            bare = uow.tokens.add(ApiToken(bob.id, "bare", "hash-bare", T0, "admin"))
            uow.commit()
        with uow_factory(read_only=True) as uow:
            assert uow.tokens.with_holder("hash-feed") == (feed, uow.users.get(alice.id))
            token, holder = uow.tokens.with_holder("hash-feed")
            assert (holder.roles, holder.settings) == (["case_manager", "supervisor"], ["acute_hospital", "workers_comp"])
            assert uow.tokens.with_holder("hash-bare") == (bare, uow.users.get(bob.id))
            assert uow.tokens.with_holder("nope") is None

    def test_two_tokens_cannot_share_a_hash(self, uow_factory):
        with uow_factory() as uow:
            alice = uow.users.add(User("cm.alice", []))
            uow.tokens.add(ApiToken(alice.id, "a", "same", T0, "admin"))
            with pytest.raises(IntegrityError):
                uow.tokens.add(ApiToken(alice.id, "b", "same", T0, "admin"))

    def test_upgrading_keeps_every_users_roles_settings_and_token(self, database_url):
        """0006 and 0007 rebuild app_user on SQLite: the rows that point at it must survive."""
        from alembic import command

        from service.persistence.database import alembic_config

        url = normalise_url(database_url)
        engine = make_engine(url)
        try:
            def upgrade(revision: str) -> None:
                with engine.begin() as connection:
                    config = alembic_config(url)
                    config.attributes["connection"] = connection
                    command.upgrade(config, revision)

            upgrade("0005")
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO app_user (id, username, display_name, token_hash, active) "
                                        "VALUES (7, 'cm.alice', 'Alice', 'hash-a', :yes)"), {"yes": True})
                connection.execute(text("INSERT INTO user_role (user_id, role) VALUES (7, 'case_manager')"))
                connection.execute(text("INSERT INTO user_setting (user_id, setting) VALUES (7, 'acute_hospital')"))
            upgrade("head")
        finally:
            engine.dispose()
        factory = UnitOfWorkFactory(make_engine(url))
        try:
            with factory(read_only=True) as uow:
                alice = uow.users.get(7)
                token = uow.tokens.get_by_hash("hash-a")
            assert (alice.roles, alice.settings, alice.failed_signins) == (["case_manager"], ["acute_hospital"], 0)
            assert (token.user_id, token.name, token.roles, token.revoked) == (7, "default", None, False)
        finally:
            factory.dispose()


class TestEngines:
    def test_sqlite_connections_use_wal_foreign_keys_and_wait_for_locks(self, tmp_path):
        engine = make_engine(default_sqlite_url(tmp_path))
        try:
            with engine.connect() as connection:
                pragmas = {p: connection.exec_driver_sql(f"PRAGMA {p}").scalar()
                           for p in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")}
        finally:
            engine.dispose()
        assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10000, "synchronous": 1}
        assert (tmp_path / "casework.db").exists()

    def test_a_plain_postgresql_url_is_given_the_psycopg_driver(self):
        assert normalise_url("postgresql://db.example/casework").drivername == "postgresql+psycopg"
        assert normalise_url("postgresql+psycopg://db.example/casework").drivername == "postgresql+psycopg"
        assert normalise_url("sqlite:///casework.db").drivername == "sqlite"
