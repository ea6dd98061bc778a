"""The inbox page's server time with thousands of open tasks, and the share of it its SQL takes.

    .venv/bin/python bench/inbox.py                       # SQLite and PostgreSQL, 10,000 open tasks
    .venv/bin/python bench/inbox.py --db postgresql --tasks 10000 --repeat 20 --explain

A fresh database gets the bundled diagrams, a case manager and a supervisor, a few
hundred real cases started through the handler in the three settings, and clones of
those cases (their stored state copied) up to N open tasks, plus as many completed tasks
that every page must filter out. Open tasks: a third claimed by the case manager, the
rest unassigned in their lane's queue, due from 3 days ago to 10 days ahead, priorities
1-5. Each page is fetched in process with the Flask test client, signed in, after two
warm-up requests; its server time is the wall time of `client.get`. "SQL" is the page's
queries alone, through `handlers.inbox` with the views the route builds. Every response
must be 200 and show the task count the seeded rows give.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import bindparam, event, insert, select, update  # noqa: E402

from bench.timers import Database  # noqa: E402
from service import create_app  # noqa: E402
from service.cli import deploy_folder  # noqa: E402
from service.demo import _shifted  # noqa: E402  (the demo's one way to move a process test's dates)
from service.persistence import tables as t  # noqa: E402
from service.web.filters import PAGE_SIZE, InboxFilters  # noqa: E402
from tests.integration.timer_fleet import percentile  # noqa: E402
from workflows import accounts, handlers  # noqa: E402
from workflows.model import CaseStatus, TaskStatus, User  # noqa: E402
from workflows.process_tests import load_process_test  # noqa: E402

CASE_MANAGER = User("carla", ["case_manager"])
SUPERVISOR = User("sue", ["supervisor", "case_manager"])
# A case manager who covers one setting: every view's queries also keep to it.
ACUTE_CASE_MANAGER = User("ann", ["case_manager"], settings=["acute_hospital"])
PASSWORD = "bench inbox password"
# One process test per setting gives realistic start data; share = the setting's part of the open tasks.
SETTINGS = (
    ("acute_hospital", "acute_hospital/tests/acute_stay_medicare_inpatient_home.yaml", "patient_name", "mrn", "MRN-{:06d}", 0.5),
    ("inpatient_rehab", "inpatient_rehab/tests/irf_six_week_stay.yaml", "patient_name", "mrn", "IRF-{:06d}", 0.25),
    ("workers_comp", "workers_comp/tests/workers_comp_two_years.yaml", "worker_name", "claim_number", "WC-2026-{:05d}", 0.25),
)
FIRST = ("Ada", "Ben", "Carmen", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Keiko", "Luis",
         "Maya", "Nikolai", "Olga", "Pedro", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera", "Wei", "Ximena", "Yusuf")
LAST = ("Brown", "Okafor", "Nguyen", "Kowalski", "Haddad", "Lindqvist", "Moreau", "Tanaka", "Osei", "Petrov",
        "Castillo", "Fitzgerald", "Abernathy", "Ramaswamy", "Delacroix", "Johansson", "Mbeki", "Schulz",
        "Quintero", "Yamamoto", "Oyelaran", "Vasquez", "Halvorsen", "Iwu", "Rinaldi", "Sorensen", "Wojcik",
        "Achebe", "Banerjee", "Carvalho", "Dubois", "Eriksen", "Gallagher", "Horvath", "Ivanova", "Kaur",
        "Lombardi", "Nakamura", "Ortega", "Pham")
SEARCH = "kafo"  # part of "Okafor": one case in forty
_TOTAL = re.compile(r'id="summary">\s*(\d+) tasks?')


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


def seed(services, *, tasks: int, real_cases: int, now: datetime) -> list[OpenTask]:
    """Start real cases, clone them up to `tasks` open tasks and as many completed ones; return the open ones."""
    accounts.add_user(services, username=CASE_MANAGER.username, roles=CASE_MANAGER.roles, password=PASSWORD)
    accounts.add_user(services, username=SUPERVISOR.username, roles=SUPERVISOR.roles, password=PASSWORD)
    accounts.add_user(services, username=ACUTE_CASE_MANAGER.username, roles=ACUTE_CASE_MANAGER.roles,
                      password=PASSWORD, settings=ACUTE_CASE_MANAGER.settings)
    templates = start_templates(services, actor=CASE_MANAGER, per_setting=real_cases // len(SETTINGS), now=now)
    numbers = iter(range(sum(map(len, templates.values())), 10**6))
    with services.uow() as uow:
        connection = uow.connection
        cases = {row.id: row._asdict() for row in connection.execute(select(t.case_record))}
        tasks_of = {}
        for row in connection.execute(select(t.human_task).order_by(t.human_task.c.id)):
            tasks_of.setdefault(row.case_id, []).append(row._asdict())
        next_case = max(cases) + 1
        new_cases, new_tasks = [], []

        def clone(template_id: int, *, status: CaseStatus, task_status: TaskStatus, limit: int) -> int:
            nonlocal next_case
            n, case_id = next(numbers), next_case
            next_case += 1
            setting = cases[template_id]["setting"]
            ref_format = next(fmt for name, _, _, _, fmt, _ in SETTINGS if name == setting)
            new_cases.append(cases[template_id] | {
                "id": case_id, "status": status.value, "subject_name": subject(n), "subject_ref": ref_format.format(n),
                "closed_at": now - timedelta(days=2) if status is CaseStatus.COMPLETED else None})
            done = task_status is TaskStatus.COMPLETED
            for row in tasks_of[template_id][:limit]:
                new_tasks.append({k: v for k, v in row.items() if k != "id"} | {
                    "case_id": case_id, "status": task_status.value,
                    "assignee": CASE_MANAGER.username if done else None,
                    "completed_at": now - timedelta(days=2) if done else None,
                    "completed_by": CASE_MANAGER.username if done else None})
            return min(limit, len(tasks_of[template_id]))

        for setting, *_, share in SETTINGS:
            wanted = round(tasks * share) - sum(len(tasks_of[c]) for c in templates[setting])
            for n in range(10**6):
                if wanted <= 0:
                    break
                wanted -= clone(templates[setting][n % len(templates[setting])], status=CaseStatus.ACTIVE,
                                task_status=TaskStatus.OPEN, limit=wanted)
        # Completed work: closed cases with two finished tasks each, and earlier steps of open cases.
        every_template = [case_id for ids in templates.values() for case_id in ids]
        for n in range(tasks // 5):
            clone(every_template[n % len(every_template)], status=CaseStatus.COMPLETED,
                  task_status=TaskStatus.COMPLETED, limit=2)
        open_case_ids = list(cases) + [row["id"] for row in new_cases if row["status"] == CaseStatus.ACTIVE.value]
        model = new_tasks[0]
        for n in range(tasks - 2 * (tasks // 5)):
            new_tasks.append(model | {"case_id": open_case_ids[n % len(open_case_ids)], "task_ref": f"done-{n}",
                                      "status": TaskStatus.COMPLETED.value, "assignee": CASE_MANAGER.username,
                                      "completed_at": now - timedelta(days=1), "completed_by": CASE_MANAGER.username})
        bulk_insert(connection, t.case_record, new_cases)
        bulk_insert(connection, t.human_task, new_tasks)
        seeded = _spread_open_tasks(connection, now=now)
        uow.commit()
    if len(seeded) != tasks:
        raise SystemExit(f"Seeding made {len(seeded)} open tasks, not {tasks}: give fewer --real-cases.")
    return seeded


def start_templates(services, *, actor: User, per_setting: int, now: datetime) -> dict[str, list[int]]:
    """Start `per_setting` real cases in each setting with its process test's start data; return their ids by setting."""
    numbers = iter(range(10**6))
    templates: dict[str, list[int]] = {}
    for setting, path, name_field, ref_field, ref_format, _ in SETTINGS:
        test = load_process_test(path, (REPO / "bpmn" / path).read_bytes())
        data = _shifted(dict(test.data), now - timedelta(hours=6) - test.start)
        for _ in range(per_setting):
            n = next(numbers)
            case = handlers.start_case(services, actor=actor, process_id=test.process, subject_name=subject(n),
                                       subject_ref=ref_format.format(n), data=data | {name_field: subject(n),
                                                                                     ref_field: ref_format.format(n)})
            templates.setdefault(setting, []).append(case.id)
    return templates


def bulk_insert(connection, table, rows: list[dict]) -> None:
    """Insert rows a thousand per statement; on PostgreSQL move the id sequence past ids given explicitly."""
    for start in range(0, len(rows), 1000):
        connection.execute(insert(table), rows[start:start + 1000])
    if rows and "id" in rows[0] and connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), (SELECT max(id) FROM {table.name}))")


def _spread_open_tasks(connection, *, now: datetime) -> list[OpenTask]:
    """Give every open task its due time, priority and assignee: a third claimed by the case manager."""
    rows = connection.execute(
        select(t.human_task.c.id, t.human_task.c.candidate_role, t.case_record.c.setting, t.case_record.c.subject_name,
               t.case_record.c.subject_ref)
        .join(t.case_record, t.case_record.c.id == t.human_task.c.case_id)
        .where(t.human_task.c.status == TaskStatus.OPEN.value).order_by(t.human_task.c.id)).all()
    lane_tasks = sum(1 for row in rows if row.candidate_role in CASE_MANAGER.roles)
    claim_share = min(1.0, len(rows) / 3 / max(1, lane_tasks))
    chance = random.Random(5)
    changes, seeded = [], []
    for row in rows:
        due_at = now + timedelta(minutes=chance.randint(-3 * 24 * 60, 10 * 24 * 60))
        created_at = min(now - timedelta(minutes=chance.randint(60, 5 * 24 * 60)), due_at - timedelta(hours=4))
        claimed = row.candidate_role in CASE_MANAGER.roles and chance.random() < claim_share
        changes.append({"task_id": row.id, "due_at": due_at, "created_at": created_at,
                        "at_risk_at": due_at - (due_at - created_at) * 0.2, "priority": chance.randint(1, 5),
                        "assignee": CASE_MANAGER.username if claimed else None,
                        "status": (TaskStatus.CLAIMED if claimed else TaskStatus.OPEN).value})
        seeded.append(OpenTask(row.candidate_role, changes[-1]["assignee"], due_at, row.setting,
                               f"{row.subject_name}\n{row.subject_ref}".lower()))
    statement = update(t.human_task).where(t.human_task.c.id == bindparam("task_id")).values(
        {name: bindparam(name) for name in ("due_at", "created_at", "at_risk_at", "priority", "assignee", "status")})
    connection.execute(statement, changes)
    return seeded


PAGES = (
    ("mine", CASE_MANAGER, {}),
    ("team", CASE_MANAGER, {"view": "team"}),
    ("team, a user covering acute only", ACUTE_CASE_MANAGER, {"view": "team"}),
    ("all", SUPERVISOR, {"view": "all"}),
    (f"all, q={SEARCH}", SUPERVISOR, {"view": "all", "q": SEARCH}),
    ("all, acute + due this week, by priority", SUPERVISOR,
     {"view": "all", "setting": "acute_hospital", "due": "week", "sort": "priority"}),
    ("all, page 50", SUPERVISOR, {"view": "all", "page": "50"}),
)


def page_views(services, user: User, args: dict):
    """The filters and the paged views the inbox route builds from these query arguments."""
    filters = InboxFilters.from_args(args)
    views = filters.views(user, now=services.clock.now(), zone=services.due_policy.zone)
    views[filters.view] = replace(views[filters.view], limit=PAGE_SIZE, offset=(filters.page - 1) * PAGE_SIZE)
    return filters, views


def expected_total(seeded: list[OpenTask], user: User, args: dict, services) -> int:
    """Count, from the seeded rows, the tasks a page should report."""
    filters, views = page_views(services, user, args)
    query = views[filters.view]
    return sum(
        1 for task in seeded
        if (filters.view != "mine" or task.assignee == user.username)
        and (filters.view != "team" or (task.assignee is None and task.role in user.roles))
        and (not filters.setting or task.setting == filters.setting)
        and user.covers(task.setting)
        and (query.due_from is None or task.due_at >= query.due_from)
        and (query.due_by is None or task.due_at <= query.due_by)
        and (not filters.q or filters.q.lower() in task.subject))


def timed(action, repeat: int, *, warm_ups: int = 2) -> tuple[list[float], object]:
    """Call `action` `warm_ups` times, then `repeat` times timed; return the sorted ms and the last result."""
    for _ in range(warm_ups):
        result = action()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = action()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times), result


def statement_times(services, action, repeat: int) -> list[tuple[float, str, object]]:
    """Call `action` `repeat` times; return each SQL statement it runs with its median ms and parameters."""
    runs: dict[int, list] = {}
    order = []

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_started"] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        order.append((statement, parameters, (time.perf_counter() - conn.info.pop("bench_started")) * 1000))

    engine = services.uow.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for _ in range(repeat):
            order.clear()
            action()
            for n, (statement, parameters, ms) in enumerate(order):
                runs.setdefault(n, [statement, parameters, []])[2].append(ms)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return [(statistics.median(ms), statement, parameters) for statement, parameters, ms in runs.values()]


def _kind(statement: str) -> str:
    text = " ".join(statement.split()).lower()
    if "count(" in text:
        return "count"
    if "from process_version" in text:
        return "settings"
    if "group by" in text:
        return "types"
    return "rows" if "from human_task" in text else text[:20]


def explain(services, statement: str, parameters) -> str:
    prefix = "EXPLAIN ANALYZE " if services.uow.engine.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
    with services.uow(read_only=True) as uow:
        rows = uow.connection.exec_driver_sql(prefix + statement, parameters).all()
    return "\n".join("    " + " | ".join(str(value) for value in row) for row in rows)


@contextmanager
def bench_app(kind: str, folder: Path):
    """An app with the bundled diagrams on a fresh SQLite file or PostgreSQL schema, dropped afterwards."""
    database = Database(kind, folder)
    app = None
    try:
        app = create_app({"DATABASE_URL": database.url, "SECRET_KEY": "bench", "SCHEDULER_ENABLED": False,
                          "BPMN_PATH": str(REPO / "bpmn")})
        deploy_folder(app, REPO / "bpmn")
        yield app
    finally:
        if app is not None:
            app.extensions["casework"].uow.dispose()
        database.drop()


def on_each_database(measure, args) -> list[dict]:
    """Print the machine and the command, then `measure(kind, args, folder)` on each database asked for."""
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    with tempfile.TemporaryDirectory() as folder:
        return [row for kind in kinds for row in measure(kind, args, Path(folder))]


def print_plans(services, statements: list[tuple[float, str, object]]) -> None:
    """Print each statement with its median ms and its plan."""
    for ms, statement, parameters in statements:
        print(f"#   {ms:.1f} ms: {' '.join(statement.split())[:400]}\n{explain(services, statement, parameters)}")


def measure(kind: str, args, folder: Path) -> list[dict]:
    with bench_app(kind, folder) as app:
        services = app.extensions["casework"]
        started = time.perf_counter()
        seeded = seed(services, tasks=args.tasks, real_cases=args.real_cases, now=services.clock.now())
        if kind == "postgresql":
            # A bulk load has no planner statistics until autovacuum's next pass; a live database has them.
            with services.uow() as uow:
                uow.connection.exec_driver_sql("ANALYZE case_record, human_task")
                uow.commit()
        print(f"# {kind}: seeded {len(seeded)} open and {args.tasks} completed tasks in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        clients = {}
        for user in (CASE_MANAGER, SUPERVISOR, ACUTE_CASE_MANAGER):
            clients[user.username] = app.test_client()
            with clients[user.username].session_transaction() as session:
                session["username"] = user.username
        results = []
        for label, user, query in PAGES:
            path = "/?" + urlencode(query) if query else "/"
            expected = expected_total(seeded, user, query, services)
            page_ms, response = timed(lambda: clients[user.username].get(path), args.repeat)
            body = response.get_data(as_text=True)
            shown = body.count("data-task-id=")
            total = _TOTAL.search(body)
            page = int(query.get("page", 1))
            if response.status_code != 200 or total is None or int(total.group(1)) != expected \
                    or shown != max(0, min(PAGE_SIZE, expected - (page - 1) * PAGE_SIZE)):
                raise SystemExit(f"{kind} {path}: HTTP {response.status_code}, count "
                                 f"{total.group(1) if total else 'missing'} and {shown} rows; expected {expected}.")
            filters, views = page_views(services, user, query)
            sql_ms, _ = timed(lambda: handlers.inbox(services, views=views, showing=filters.view), args.repeat)
            statements = sorted(statement_times(
                services, lambda: handlers.inbox(services, views=views, showing=filters.view), args.repeat),
                key=lambda s: -s[0])
            results.append({"db": kind, "page": label, "median": statistics.median(page_ms),
                            "p95": percentile(page_ms, 0.95), "sql": statistics.median(sql_ms),
                            "sql_p95": percentile(sql_ms, 0.95), "shown": shown, "total": expected,
                            "statements": statements})
            print(f"# {kind} {label}: page {statistics.median(page_ms):.1f} ms, SQL {statistics.median(sql_ms):.1f} ms; "
                  "slowest statements " + ", ".join(f"{_kind(sql)} {ms:.1f}" for ms, sql, _ in statements[:4]), flush=True)
            if args.explain:
                print_plans(services, statements[:2])
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--tasks", type=int, default=10000, help="open tasks (and as many completed ones)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page, after 2 warm-ups")
    parser.add_argument("--real-cases", type=int, default=300, help="cases started through the handler, then cloned")
    parser.add_argument("--explain", action="store_true", help="print the plan of each page's two slowest statements")
    results = on_each_database(measure, parser.parse_args())
    print("\n| db | page | median ms | p95 ms | SQL median ms | SQL p95 ms | rows shown | total count |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for r in results:
        print(f"| {r['db']} | {r['page']} | {r['median']:.1f} | {r['p95']:.1f} | {r['sql']:.1f} | {r['sql_p95']:.1f} "
              f"| {r['shown']} | {r['total']:,} |")
    slow = [r for r in results if r["median"] >= 300]
    print(f"\nTarget (issue 5): every page under 300 ms. "
          + ("Met." if not slow else "Missed by: " + ", ".join(f"{r['db']} {r['page']} ({r['median']:.0f} ms)" for r in slow)))


if __name__ == "__main__":
    main()
