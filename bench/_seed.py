"""The inbox benchmark's data at hospital scale: a few real cases started through the handler, cloned in bulk.

The real cases give realistic stored state, case data and tasks; every other case copies one of
them server-side (INSERT ... SELECT, so the wide `state` never passes through Python) and every
task row is written in one stream (COPY on PostgreSQL, one executemany on SQLite).
"""
from __future__ import annotations

import math
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

from sqlalchemy import bindparam, create_engine, select, update

from service.demo import _shifted  # the demo's one way to move a process test's dates
from service.persistence import tables as t
from workflows import accounts, handlers
from workflows.model import CaseStatus, TaskStatus, User
from workflows.process_tests import load_process_test

REPO = Path(__file__).resolve().parents[1]
CASE_MANAGER = User("carla", ["case_manager"])
SUPERVISOR = User("sue", ["supervisor", "case_manager"])
# A case manager who covers one setting: every view's queries also keep to it.
ACUTE_CASE_MANAGER = User("ann", ["case_manager"], settings=["acute_hospital"])
PASSWORD = "bench inbox password"
# One process test per setting gives realistic start data; its share of the cases is in CASE_PATTERN.
SETTINGS = (
    ("acute_hospital", "acute_hospital/tests/acute_stay_medicare_inpatient_home.yaml", "patient_name", "mrn", "MRN-{:06d}"),
    ("inpatient_rehab", "inpatient_rehab/tests/irf_six_week_stay.yaml", "patient_name", "mrn", "IRF-{:06d}"),
    ("workers_comp", "workers_comp/tests/workers_comp_two_years.yaml", "worker_name", "claim_number", "WC-2026-{:06d}"),
)
CASE_PATTERN = ("acute_hospital", "acute_hospital", "inpatient_rehab", "workers_comp")  # 50% / 25% / 25%
FIRST = ("Ada", "Ben", "Carmen", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Keiko", "Luis",
         "Maya", "Nikolai", "Olga", "Pedro", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera", "Wei", "Ximena", "Yusuf")
LAST = ("Brown", "Okafor", "Nguyen", "Kowalski", "Haddad", "Lindqvist", "Moreau", "Tanaka", "Osei", "Petrov",
        "Castillo", "Fitzgerald", "Abernathy", "Ramaswamy", "Delacroix", "Johansson", "Mbeki", "Schulz",
        "Quintero", "Yamamoto", "Oyelaran", "Vasquez", "Halvorsen", "Iwu", "Rinaldi", "Sorensen", "Wojcik",
        "Achebe", "Banerjee", "Carvalho", "Dubois", "Eriksen", "Gallagher", "Horvath", "Ivanova", "Kaur",
        "Lombardi", "Nakamura", "Ortega", "Pham")
CLAIMED_SHARE = 0.4  # of open tasks, claimed by someone in their lane
CASE_LOAD = 250  # claimed tasks per person: a lane has (its claimed tasks / CASE_LOAD) people, carla one of them
HISTORY_ON_OPEN = 5 / 11  # of the finished rows, on open cases (earlier steps); the rest on closed cases
ROWS_PER_CLOSED_CASE = 8
CANCELLED_EVERY = 12  # one finished row in twelve was cancelled, not completed
_TASK_COLUMNS = ("case_id", "task_ref", "element_id", "title", "candidate_role", "assignee", "status", "priority",
                 "created_at", "due_at", "at_risk_at", "form_ref", "ui_form_ref", "instructions", "completed_at",
                 "completed_by", "adhoc")
_REF_FORMAT = {setting: ref_format for setting, *_, ref_format in SETTINGS}
_SPEC_COLUMNS = ("id", "template_id", "status", "subject_name", "subject_ref", "opened_at", "closed_at", "updated_at")


@dataclass(frozen=True)
class Scale:
    """How much data: open cases and open tasks (real cases included), and task rows in all."""

    cases: int
    tasks: int
    task_rows: int
    real_cases: int

    @property
    def finished_rows(self) -> int:
        return self.task_rows - self.tasks

    @property
    def history_on_open(self) -> int:
        return round(self.finished_rows * HISTORY_ON_OPEN)

    @property
    def closed_cases(self) -> int:
        return math.ceil((self.finished_rows - self.history_on_open) / ROWS_PER_CLOSED_CASE)

    def describe(self) -> str:
        return (f"{self.cases:,} open cases ({self.real_cases} started through the handler), {self.closed_cases:,} "
                f"closed; {self.task_rows:,} task rows: {self.tasks:,} open, {self.history_on_open:,} finished on "
                f"open cases, {self.finished_rows - self.history_on_open:,} on closed cases")


@dataclass
class OpenTask:
    """What the inbox filters an open task by, kept to work out each page's expected count."""

    role: str
    assignee: str | None
    due_at: datetime
    setting: str
    subject: str


def subject(number: int) -> str:
    first, rest = FIRST[number % len(FIRST)], number // len(FIRST)
    return f"{first} {chr(65 + rest // len(LAST) % 26)}. {LAST[rest % len(LAST)]}"


def spread(total: int, parts: int, index: int) -> int:
    """Part `index` of `total` shared as evenly as whole numbers allow among `parts`."""
    return (index + 1) * total // parts - index * total // parts


class _Attributes:
    """Due times, priorities and owners of task rows, from one seeded random stream."""

    def __init__(self, now: datetime, lane_sizes: dict[str, int]):
        self.now, self.chance = now, random.Random(5)
        self.staff = {}
        for role, open_tasks in lane_sizes.items():
            people = max(1, round(open_tasks * CLAIMED_SHARE / CASE_LOAD))
            names = [CASE_MANAGER.username, ACUTE_CASE_MANAGER.username] if role == "case_manager" else []
            self.staff[role] = (names + [f"{role}.{n:03d}" for n in range(people)])[:max(people, len(names))]

    def minutes(self, low: int, high: int) -> timedelta:
        return timedelta(minutes=self.chance.randint(low, high))

    def open(self, role: str) -> dict:
        due_at = self.now + self.minutes(-3 * 24 * 60, 10 * 24 * 60)
        created_at = min(self.now - self.minutes(60, 5 * 24 * 60), due_at - timedelta(hours=4))
        claimed = self.chance.random() < CLAIMED_SHARE and role in self.staff
        assignee = self.chance.choice(self.staff[role]) if claimed else None
        return {"due_at": due_at, "created_at": created_at, "priority": self.chance.randint(1, 5),
                "at_risk_at": due_at - timedelta(minutes=(due_at - created_at) // timedelta(minutes=1) // 5),
                "assignee": assignee, "status": (TaskStatus.CLAIMED if claimed else TaskStatus.OPEN).value,
                "completed_at": None, "completed_by": None}

    def finished(self, role: str, days_ago: int) -> dict:
        created_at = self.now - timedelta(days=days_ago) - self.minutes(0, 24 * 60)
        done_at = created_at + self.minutes(10, 24 * 60)
        cancelled = self.chance.randrange(CANCELLED_EVERY) == 0
        person = None if cancelled else self.chance.choice(self.staff.get(role) or [CASE_MANAGER.username])
        return {"due_at": created_at + timedelta(days=1), "created_at": created_at,
                "at_risk_at": created_at + timedelta(hours=19), "priority": self.chance.randint(1, 5),
                "assignee": person, "completed_by": person, "completed_at": done_at,
                "status": (TaskStatus.CANCELLED if cancelled else TaskStatus.COMPLETED).value}


def seed(services, scale: Scale, *, now: datetime, log=print) -> list[OpenTask]:
    """Make the scale's cases and task rows; return the open tasks as seeded."""
    began = time.perf_counter()
    for user in (CASE_MANAGER, SUPERVISOR, ACUTE_CASE_MANAGER):
        accounts.add_user(services, username=user.username, roles=user.roles, password=PASSWORD, settings=user.settings)
    templates = start_templates(services, per_setting=scale.real_cases // len(SETTINGS), now=now)
    log(f"#   {sum(map(len, templates.values()))} real cases started in {time.perf_counter() - began:.1f} s")
    with _bulk_connection(services) as connection:
        cases = {row.id: row for row in connection.execute(
            select(t.case_record.c.id, t.case_record.c.setting, t.case_record.c.subject_name,
                   t.case_record.c.subject_ref))}
        tasks_of: dict[int, list] = {}
        for row in connection.execute(select(t.human_task).order_by(t.human_task.c.id)):
            tasks_of.setdefault(row.case_id, []).append(row)
        template_tasks = sum(map(len, tasks_of.values()))
        clones, clone_tasks = scale.cases - len(cases), scale.tasks - template_tasks
        if clones < 0 or clone_tasks < clones:
            raise SystemExit(f"{scale.tasks} open tasks cannot cover {scale.cases} open cases "
                             f"({len(cases)} real ones hold {template_tasks}): give more --tasks or fewer --real-cases.")
        if scale.finished_rows < 0:
            raise SystemExit("--task-rows must be at least --tasks.")
        lanes: dict[str, int] = {}
        for setting, ids in templates.items():
            role = tasks_of[ids[0]][0].candidate_role
            lanes[role] = lanes.get(role, 0) + round(scale.tasks * CASE_PATTERN.count(setting) / len(CASE_PATTERN))
        attributes = _Attributes(now, lanes)
        plan = _plan_cases(scale, templates, first_id=max(cases) + 1, chance=random.Random(7))
        step = time.perf_counter()
        _copy_cases(connection, plan, now=now, chance=attributes.chance)
        log(f"#   {len(plan):,} cases cloned in {time.perf_counter() - step:.1f} s")
        step = time.perf_counter()
        seeded = _spread_template_tasks(connection, tasks_of, cases, attributes)
        rows = _task_rows(scale, plan, tasks_of, attributes, seeded, clone_tasks=clone_tasks)
        written = _write_tasks(connection, rows)
        log(f"#   {written:,} task rows written in {time.perf_counter() - step:.1f} s")
    if len(seeded) != scale.tasks or written + template_tasks != scale.task_rows:
        raise SystemExit(f"Seeding made {len(seeded)} open tasks and {written + template_tasks} task rows, "
                         f"not {scale.tasks} and {scale.task_rows}.")
    return seeded


@contextmanager
def _bulk_connection(services):
    """A connection for the bulk load, committed at the end.

    On SQLite, a plain connection without the write-ahead log, fsyncs or foreign-key checks
    and with a large page cache: the file is new and nobody else reads it yet, and through the
    log its gigabytes of case state would be written twice. The log is back on afterwards.
    """
    engine = services.uow.engine
    if engine.dialect.name != "sqlite":
        with services.uow() as uow:
            yield uow.connection
            uow.commit()
        return
    engine.dispose()
    bulk = create_engine(engine.url)
    try:
        with bulk.connect() as connection:
            for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-500000", "foreign_keys=OFF"):
                connection.exec_driver_sql(f"PRAGMA {pragma}")
            yield connection
            connection.commit()
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    finally:
        bulk.dispose()


def start_templates(services, *, per_setting: int, now: datetime) -> dict[str, list[int]]:
    """Start `per_setting` real cases in each setting with its process test's start data; return their ids by setting."""
    templates: dict[str, list[int]] = {}
    for setting, path, name_field, ref_field, ref_format in SETTINGS:
        test = load_process_test(path, (REPO / "bpmn" / path).read_bytes())
        data = _shifted(dict(test.data), now - timedelta(hours=6) - test.start)
        for n in range(per_setting):
            number = len(SETTINGS) * n + len(templates)
            case = handlers.start_case(
                services, actor=CASE_MANAGER, process_id=test.process, subject_name=subject(number),
                subject_ref=ref_format.format(number),
                data=data | {name_field: subject(number), ref_field: ref_format.format(number)})
            templates.setdefault(setting, []).append(case.id)
    return templates


def _plan_cases(scale: Scale, templates: dict[str, list[int]], *, first_id: int, chance: random.Random) -> list[tuple]:
    """(case id, template id, setting, open?) of every cloned case: open and closed ones interleaved, as they were opened."""
    real = sum(map(len, templates.values()))
    kinds = [True] * (scale.cases - real) + [False] * scale.closed_cases
    chance.shuffle(kinds)
    plan, counts = [], {True: 0, False: 0}
    for offset, is_open in enumerate(kinds):
        n = counts[is_open]
        counts[is_open] += 1
        setting = CASE_PATTERN[n % len(CASE_PATTERN)]
        ids = templates[setting]
        plan.append((first_id + offset, ids[n // len(CASE_PATTERN) % len(ids)], setting, is_open))
    return plan


def _processor(column, dialect):
    """The column type's own conversion of a Python value, so bulk rows are stored exactly as the app stores them."""
    process = column.type.bind_processor(dialect)
    return lru_cache(maxsize=1 << 16)(process) if process else (lambda value: value)


def _copy_cases(connection, plan: list[tuple], *, now: datetime, chance: random.Random) -> None:
    """Insert the cloned cases: a narrow list of what differs, then INSERT ... SELECT copying each template's row."""
    dialect = connection.dialect
    when = _processor(t.case_record.c.opened_at, dialect)
    specs = []
    for case_id, template_id, setting, is_open in plan:
        opened = now - timedelta(days=chance.randint(1, 30) if is_open else chance.randint(40, 400))
        closed = None if is_open else opened + timedelta(days=chance.randint(3, 30))
        specs.append((case_id, template_id, (CaseStatus.ACTIVE if is_open else CaseStatus.COMPLETED).value,
                      subject(case_id), _REF_FORMAT[setting].format(case_id), when(opened), when(closed),
                      when(closed or opened)))
    postgres = dialect.name == "postgresql"
    connection.exec_driver_sql(
        "CREATE TEMPORARY TABLE bench_case_spec (id BIGINT, template_id BIGINT, status VARCHAR(20), "
        "subject_name VARCHAR(255), subject_ref VARCHAR(100), opened_at {0}, closed_at {0}, updated_at {0})"
        .format("TIMESTAMPTZ" if postgres else "DATETIME"))
    _write(connection, "bench_case_spec", _SPEC_COLUMNS, specs)
    given = [c for c in _SPEC_COLUMNS if c != "template_id"]
    copied = ("process_version_id", "process_id", "state", "setting", "priority", "data", "opened_by", "version",
              "elements_done")
    connection.exec_driver_sql(
        f"INSERT INTO case_record ({', '.join(given)}, {', '.join(copied)}) "
        f"SELECT {', '.join('s.' + c for c in given)}, {', '.join('c.' + c for c in copied)} "
        "FROM bench_case_spec s JOIN case_record c ON c.id = s.template_id ORDER BY s.id")
    connection.exec_driver_sql("DROP TABLE bench_case_spec")
    if postgres:
        connection.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('case_record', 'id'), (SELECT max(id) FROM case_record))")


def _spread_template_tasks(connection, tasks_of: dict, cases: dict, attributes: _Attributes) -> list[OpenTask]:
    """Give the real cases' open tasks their due times, priorities and owners as the clones get them."""
    changes, seeded = [], []
    for case_id, rows in tasks_of.items():
        for row in rows:
            values = attributes.open(row.candidate_role)
            changes.append({"task_id": row.id} | {k: values[k] for k in
                                                  ("due_at", "created_at", "at_risk_at", "priority", "assignee", "status")})
            case = cases[case_id]
            seeded.append(OpenTask(row.candidate_role, values["assignee"], values["due_at"], case.setting,
                                   f"{case.subject_name}\n{case.subject_ref}".lower()))
    statement = update(t.human_task).where(t.human_task.c.id == bindparam("task_id")).values(
        {name: bindparam(name) for name in ("due_at", "created_at", "at_risk_at", "priority", "assignee", "status")})
    connection.execute(statement, changes)
    return seeded


def _task_rows(scale: Scale, plan, tasks_of, attributes: _Attributes, seeded: list[OpenTask], *,
               clone_tasks: int):
    """Every cloned case's task rows in case order: its finished steps first, then (open cases) its open tasks."""
    open_plan = [case_id for case_id, *_, is_open in plan if is_open]
    open_index = {case_id: n for n, case_id in enumerate(open_plan)}
    closed_rows = scale.finished_rows - scale.history_on_open
    closed_index = 0
    for case_id, template_id, setting, is_open in plan:
        template = tasks_of[template_id]
        if is_open:
            n = open_index[case_id]
            finished, still_open = spread(scale.history_on_open, len(open_plan), n), spread(clone_tasks, len(open_plan), n)
        else:
            finished, still_open = spread(closed_rows, scale.closed_cases, closed_index), 0
            closed_index += 1
        for j in range(finished + still_open):
            row = template[j % len(template)]
            if j < finished:
                values = attributes.finished(row.candidate_role, days_ago=2 * (finished - j) + (0 if is_open else 40))
            else:
                values = attributes.open(row.candidate_role)
                seeded.append(OpenTask(row.candidate_role, values["assignee"], values["due_at"], setting,
                                       f"{subject(case_id)}\n{_REF_FORMAT[setting].format(case_id)}".lower()))
            yield {"case_id": case_id, "task_ref": f"bench-{case_id}-{j}", "element_id": row.element_id,
                   "title": row.title, "candidate_role": row.candidate_role, "form_ref": row.form_ref,
                   "ui_form_ref": row.ui_form_ref, "instructions": row.instructions, "adhoc": False} | values


def _write_tasks(connection, rows) -> int:
    convert = {name: _processor(t.human_task.c[name], connection.dialect)
               for name in ("created_at", "due_at", "at_risk_at", "completed_at")}
    count = 0

    def tuples():
        nonlocal count
        for row in rows:
            count += 1
            yield tuple(convert[name](row[name]) if name in convert else row[name] for name in _TASK_COLUMNS)

    _write(connection, "human_task", _TASK_COLUMNS, tuples())
    return count


def _write(connection, table: str, columns: tuple[str, ...], rows) -> None:
    """Stream rows into a table: COPY on PostgreSQL, one executemany on SQLite."""
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    connection.connection.driver_connection.executemany(
        f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)
