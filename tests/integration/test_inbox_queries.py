"""The inbox's task queries on a real SQLite file and PostgreSQL schema, checked against the rows themselves.

The repository reads open tasks through partial indexes (named to SQLite), counts the shown
view and its task types in one statement, and looks a task's case up by setting: every
view shape must still list, count and offer task types exactly as the rows say.
"""
from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from service.persistence import metadata
from workflows.model import OPEN_TASK_STATUSES, Case, CaseStatus, HumanTask, ProcessVersion, TaskStatus
from workflows.ports import TaskQuery, TaskSort

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=timezone.utc)
PROCESSES = (("acute_stay", "acute_hospital"), ("acute_short", "acute_hospital"), ("irf_stay", "inpatient_rehab"),
             ("wc_claim", "workers_comp"))
ROLES = ("case_manager", "clinical_liaison", "nurse_case_manager", None)
ELEMENTS = (("admission_review", "Admission status review"), ("early_screen", "Early screen"),
            ("referral_intake", "Referral intake"), ("ack", "Acknowledge referral"), ("ack", "Acknowledge (v2)"))
PEOPLE = ("carla", "cole", None)


@pytest.fixture
def seeded(uow_factory):
    """About 240 tasks of every status on 40 cases in four processes and three settings; return (tasks, cases)."""
    chance = random.Random(3)
    with uow_factory() as uow:
        versions = {process_id: uow.processes.add(ProcessVersion(
            process_id=process_id, version=1, content_hash=f"sha256:{process_id}", files={"p.bpmn": b"<definitions/>"},
            name=process_id, setting=setting, deployed_by="designer", deployed_at=NOW)) for process_id, setting in PROCESSES}
        cases = {}
        for n in range(40):
            process_id, setting = PROCESSES[n % len(PROCESSES)]
            case = uow.cases.add(Case(
                process_version_id=versions[process_id].id, process_id=process_id, state="{}",
                status=CaseStatus.ACTIVE if n % 5 else CaseStatus.COMPLETED, opened_at=NOW, opened_by="cm",
                subject_name=("Okafor " if n % 7 == 0 else "Nguyen ") + str(n), subject_ref=f"MRN-{n:04d}",
                setting=setting))
            cases[case.id] = case
        tasks = []
        for n in range(240):
            element_id, title = chance.choice(ELEMENTS)
            status = chance.choice([TaskStatus.OPEN, TaskStatus.OPEN, TaskStatus.CLAIMED, TaskStatus.COMPLETED,
                                    TaskStatus.CANCELLED])
            assignee = None if status is TaskStatus.OPEN and chance.random() < 0.8 else chance.choice(PEOPLE)
            due = None if chance.random() < 0.15 else NOW + timedelta(hours=chance.randint(-72, 240))
            tasks.append(uow.tasks.add(HumanTask(
                case_id=chance.choice(list(cases)), task_ref=f"t{n}", element_id=element_id, title=title,
                candidate_role=chance.choice(ROLES), status=status, assignee=assignee, priority=chance.randint(1, 5),
                created_at=NOW - timedelta(hours=chance.randint(1, 300)), due_at=due)))
        uow.commit()
    return tasks, cases


def matches(task: HumanTask, case: Case, query: TaskQuery) -> bool:
    """The query's meaning, written out over one row."""
    text_ = (query.text or "").strip().lower()
    return all((
        query.case_id is None or task.case_id == query.case_id,
        query.candidate_roles is None or task.candidate_role in query.candidate_roles,
        query.assignee is None or task.assignee == query.assignee,
        query.statuses is None or task.status in query.statuses,
        not query.unassigned_only or task.assignee is None,
        query.priority is None or task.priority == query.priority,
        query.due_from is None or (task.due_at is not None and task.due_at >= query.due_from),
        query.due_by is None or (task.due_at is not None and task.due_at <= query.due_by),
        query.element_id is None or task.element_id == query.element_id,
        query.settings is None or case.setting in query.settings,
        query.setting is None or case.setting == query.setting,
        query.process_id is None or case.process_id == query.process_id,
        not text_ or text_ in case.subject_name.lower() or text_ in case.subject_ref.lower()
        or case.id == query.case_number(),
    ))


def in_order(tasks: list[HumanTask], sort: TaskSort) -> list[HumanTask]:
    def by_due(task):
        return (task.due_at is None, task.due_at or NOW, task.created_at, task.id)

    key = {TaskSort.DUE: by_due, TaskSort.PRIORITY: lambda task: (task.priority, *by_due(task)),
           TaskSort.CREATED: lambda task: (task.created_at, task.id)}[sort]
    return sorted(tasks, key=key)


OPEN = list(OPEN_TASK_STATUSES)
TEAM = dict(candidate_roles=["case_manager"], unassigned_only=True, statuses=[TaskStatus.OPEN])
WEEK = dict(due_from=NOW - timedelta(days=2), due_by=NOW + timedelta(days=5))
SHAPES = {
    "mine": dict(assignee="carla", statuses=OPEN),
    "mine, a week, acute": dict(assignee="carla", statuses=OPEN, setting="acute_hospital", **WEEK),
    "team": TEAM,
    "team of two roles": dict(TEAM, candidate_roles=["case_manager", "nurse_case_manager"]),
    "team, acute, a week, by priority": dict(TEAM, setting="acute_hospital", sort=TaskSort.PRIORITY, **WEEK),
    "team, covering rehab and comp": dict(TEAM, settings=["inpatient_rehab", "workers_comp"]),
    "team, overdue, oldest first": dict(TEAM, due_by=NOW, sort=TaskSort.CREATED),
    "team, no roles": dict(TEAM, candidate_roles=[]),
    "all": dict(statuses=OPEN),
    "all, page 2": dict(statuses=OPEN, limit=7, offset=7),
    "all, by priority, priority 2": dict(statuses=OPEN, priority=2, sort=TaskSort.PRIORITY),
    "all, one task type": dict(statuses=OPEN, element_id="ack"),
    "all, search": dict(statuses=OPEN, text="okafor"),
    "all, case number": dict(statuses=OPEN, text="#3"),
    "all, process, covering acute": dict(statuses=OPEN, process_id="acute_short", settings=["acute_hospital"]),
    "all, no settings covered": dict(statuses=OPEN, settings=[]),
    "finished": dict(statuses=[TaskStatus.COMPLETED, TaskStatus.CANCELLED], setting="workers_comp"),
    "anything": dict(),
    "one case": dict(case_id=5, statuses=OPEN),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_view_lists_counts_and_offers_task_types_as_the_rows_say(uow_factory, seeded, shape):
    tasks, cases = seeded
    query = TaskQuery(**{"limit": 500} | SHAPES[shape])
    selected = in_order([task for task in tasks if matches(task, cases[task.case_id], query)], query.sort)
    types = {}
    for task in tasks:
        if matches(task, cases[task.case_id], replace(query, element_id=None)):
            types[task.element_id] = min(types.get(task.element_id, task.title), task.title)
    page = [task.id for task in selected][query.offset:query.offset + query.limit]

    with uow_factory(read_only=True) as uow:
        # As the inbox asks: its page, then every view's count, then the shown view's task types.
        rows = uow.tasks.query_in_cases(query)
        assert [row.task.id for row in rows] == page
        assert all(row.setting == cases[row.task.case_id].setting for row in rows)
        assert uow.tasks.count(query) == len(selected)
        by_type = uow.tasks.task_types(query)
        assert (sum(number for _, number in by_type.values()) if query.element_id is None
                else by_type.get(query.element_id, ("", 0))[1]) == len(selected)
        assert uow.tasks.count(replace(query, element_id="ack")) == sum(
            1 for task in tasks if matches(task, cases[task.case_id], replace(query, element_id="ack")))
        assert {k: title for k, (title, _) in uow.tasks.task_types(query).items()} == dict(
            sorted(types.items(), key=lambda pair: pair[1]))
    with uow_factory(read_only=True) as uow:
        # And each on its own.
        assert uow.tasks.count(query) == len(selected)
        assert {k: title for k, (title, _) in uow.tasks.task_types(query).items()} == dict(
            sorted(types.items(), key=lambda pair: pair[1]))
        assert [task.id for task in uow.tasks.query(query)] == page


def test_counts_and_task_types_follow_writes_in_the_same_unit_of_work(uow_factory, seeded):
    tasks, cases = seeded
    query = TaskQuery(**TEAM)
    with uow_factory() as uow:
        uow.tasks.query_in_cases(query)
        before = uow.tasks.count(query)
        claimed = next(task for task in tasks if matches(task, cases[task.case_id], query))
        claimed.assignee, claimed.status = "carla", TaskStatus.CLAIMED
        uow.tasks.update(claimed)
        assert uow.tasks.count(query) == before - 1
        uow.tasks.add(HumanTask(case_id=claimed.case_id, task_ref="new", element_id="brand_new", title="Brand new",
                                candidate_role="case_manager", status=TaskStatus.OPEN, created_at=NOW))
        assert uow.tasks.count(query) == before
        assert "brand_new" in uow.tasks.task_types(query)


def test_every_index_the_tables_declare_is_built_by_the_migrations(uow_factory):
    # Alembic cannot compare SQLite's expression indexes with the tables; this test does, by name and WHERE.
    declared = {index.name: index for table in ("human_task", "case_record") for index in metadata.tables[table].indexes}
    with uow_factory.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            built = dict(connection.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                "AND tbl_name IN ('human_task', 'case_record')")).all())
        else:
            built = dict(connection.execute(text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                "AND tablename IN ('human_task', 'case_record') AND indexname NOT LIKE 'pk_%' "
                "AND indexname NOT LIKE 'uq_%'")).all())
    assert set(built) == set(declared)
    for name, index in declared.items():
        where = index.dialect_options["sqlite"]["where"]
        assert (where is not None) == (" WHERE " in built[name].upper()), name
