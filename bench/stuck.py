"""The stuck-case page's server time with 100,000 active cases, 5,000 of them flagged by the scan.

    .venv/bin/python bench/stuck.py                       # SQLite and PostgreSQL, 100,000 cases, 5,000 stuck
    .venv/bin/python bench/stuck.py --db postgresql --cases 100000 --stuck 5000 --repeat 20 --explain

A fresh database gets the bundled diagrams, two supervisors (one covering every setting,
one acute_hospital only) and a team of 40 spread over the three settings' lanes, a few
real cases started through the handler in each setting, and clones of them (stored state
copied) up to N active cases, half acute_hospital, a quarter each inpatient_rehab and
workers_comp, with 1-2 open tasks each (half claimed by a team member of the lane) and
the templates' timers and message waits. S of the cases are made stuck, one reason each:
40% a task overdue, 22% a task at risk, 10% a timer not fired, 8% an open incident,
10% stalled (no open task, no pending timer), 10% idle (no engine action for over a week).
The stuck-case scan itself (`run_stuck_scan`) then writes the flags; the benchmark stops
unless it finds exactly the planned ones. Each page is fetched in process with the Flask
test client, signed in, after three warm-up requests; its server time is the wall time of
`client.get`. "SQL" is the page's handler calls alone; "statements" counts every statement
of one request (signing in included). Every response must be 200 and show the count and
rows the seeded flags give.
"""
from __future__ import annotations

import argparse
import csv
import io
import random
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import select, update  # noqa: E402

from bench._seed import CASE_PATTERN, SETTINGS, start_templates, subject  # noqa: E402
from bench.harness import bulk_insert  # noqa: E402
from bench.inbox import bench_app, on_each_database, print_plans, statement_times, timed  # noqa: E402
from service.persistence import tables as t  # noqa: E402
from service.web.stuck import PAGE_SIZE, StuckFilters  # noqa: E402
from service.web.sessions import session_for  # noqa: E402
from tests.integration.timer_fleet import percentile  # noqa: E402
from workflows import accounts, handlers  # noqa: E402
from workflows.handlers.scan import run_stuck_scan  # noqa: E402
from workflows.model import CaseStatus, FlagReason, IncidentStatus, TaskStatus, TimerStatus, User  # noqa: E402

SUPERVISOR = User("sue", ["supervisor"])
ACUTE_SUPERVISOR = User("amy", ["supervisor"], settings=["acute_hospital"])
# Each setting's lane (the role its templates' tasks are for) and how many of the team work it.
TEAM = {"acute_hospital": ("case_manager", 20), "inpatient_rehab": ("clinical_liaison", 10),
        "workers_comp": ("nurse_case_manager", 10)}
# A timer event of each setting's diagram, for the timers left unfired.
LATE_TIMER = {"acute_hospital": "wait_for_next_review", "inpatient_rehab": "authorization_clock_expired",
              "workers_comp": "wait_for_progress_report"}
REASON_SHARE = {FlagReason.TASK_OVERDUE: 0.40, FlagReason.TASK_AT_RISK: 0.22, FlagReason.TIMER_OVERDUE: 0.10,
                FlagReason.INCIDENT: 0.08, FlagReason.STALLED: 0.10, FlagReason.IDLE: 0.10}
IDLE_DAYS = 7
ANALYZED = ("case_record", "human_task", "timer", "incident", "message_wait", "case_flag", "case_event", "app_user",
            "user_role", "user_setting")
_TOTAL = re.compile(r"(\d+) match(?:es)?")


@dataclass(frozen=True)
class Flag:
    """What the stuck list filters a planned flag by, kept to work out each page's expected count."""

    reason: FlagReason
    setting: str
    process_id: str
    assignee: str | None


def add_people(services) -> tuple[str, dict[str, list[str]]]:
    """Add the supervisors and the team; return the supervisor's API token and each setting's team members."""
    _, token = accounts.add_user(services, username=SUPERVISOR.username, roles=SUPERVISOR.roles)
    accounts.add_user(services, username=ACUTE_SUPERVISOR.username, roles=ACUTE_SUPERVISOR.roles,
                      settings=ACUTE_SUPERVISOR.settings)
    team: dict[str, list[str]] = {}
    for setting, (role, size) in TEAM.items():
        for n in range(size):
            username = f"{role.split('_')[0]}{n + 1:02d}.{setting.split('_')[0]}"
            accounts.add_user(services, username=username, roles=[role], settings=[setting],
                              display_name=subject(37 * len(team) + 11 * n))
            team.setdefault(setting, []).append(username)
    return token, team


def seed(services, *, cases: int, stuck: int, real_cases: int, team: dict[str, list[str]], now: datetime) -> list[Flag]:
    """Start real cases, clone them up to `cases` active ones, make `stuck` of them stuck; return the planned flags."""
    templates = start_templates(services, per_setting=real_cases // 3, now=now)
    template_ids = [case_id for ids in templates.values() for case_id in ids]
    chance = random.Random(6)
    reasons = [reason for reason, share in REASON_SHARE.items() for _ in range(round(stuck * share))]
    reasons += [None] * (cases - len(template_ids) - len(reasons))
    chance.shuffle(reasons)
    settings = list(CASE_PATTERN)
    with services.uow() as uow:
        clones = Clones(uow.connection, template_ids, team=team, chance=chance, now=now)
        # The templates stay ordinary active cases: nothing of theirs falls due before the scan.
        for table, values in ((t.human_task, {"at_risk_at": now + timedelta(days=2)}), (t.timer, {})):
            uow.connection.execute(update(table).where(table.c.case_id.in_(template_ids))
                                   .values(due_at=now + timedelta(days=3), **values))
        first_id = max(template_ids) + 1
        planned = []
        for n, reason in enumerate(reasons):
            setting = settings[n % len(settings)]
            flag = clones.add(first_id + n, template=templates[setting][n % len(templates[setting])], reason=reason)
            planned += [flag] if flag else []
        for table, rows in clones.rows.items():
            bulk_insert(uow.connection, table, rows)
        uow.commit()
    return planned


class Clones:
    """Copies of real cases with their open tasks, pending timers and message waits, stuck for at most one reason."""

    def __init__(self, connection, template_ids: list[int], *, team: dict[str, list[str]], chance: random.Random,
                 now: datetime):
        self.team, self.chance, self.now = team, chance, now
        self.cases = {row.id: row._asdict() for row in connection.execute(select(t.case_record))}
        self.tasks = self._rows_of(connection, t.human_task, template_ids, status=TaskStatus.OPEN.value)
        self.timers = self._rows_of(connection, t.timer, template_ids, status=TimerStatus.PENDING.value)
        self.waits = self._rows_of(connection, t.message_wait, template_ids)
        self.rows = {table: [] for table in (t.case_record, t.human_task, t.timer, t.message_wait, t.incident)}

    @staticmethod
    def _rows_of(connection, table, case_ids: list[int], **equal) -> dict[int, list[dict]]:
        found: dict[int, list[dict]] = {}
        statement = select(table).where(table.c.case_id.in_(case_ids)).filter_by(**equal).order_by(table.c.id)
        for row in connection.execute(statement):
            found.setdefault(row.case_id, []).append({k: v for k, v in row._asdict().items() if k != "id"})
        return found

    def ago(self, low: float, high: float) -> datetime:
        return self.now - timedelta(hours=self.chance.uniform(low, high))

    def add(self, case_id: int, *, template: int, reason: FlagReason | None) -> Flag | None:
        """Clone the template as case `case_id`, stuck for `reason` (None: not stuck); return the flag it should get."""
        model, chance, now = self.cases[template], self.chance, self.now
        setting, number = model["setting"], case_id - 1
        last_action = self.ago(7.5 * 24, 60 * 24) if reason is FlagReason.IDLE else self.ago(1, 6.5 * 24)
        self.rows[t.case_record].append(model | {
            "id": case_id, "status": CaseStatus.ACTIVE.value, "subject_name": subject(number),
            "subject_ref": next(f for name, *_, f in SETTINGS if name == setting).format(number),
            "updated_at": last_action, "opened_at": last_action - timedelta(hours=chance.uniform(1, 30 * 24))})
        flag = Flag(reason, setting, model["process_id"], None) if reason else None
        lane = self.tasks[template][:1 + (chance.random() < 0.5)] if reason is not FlagReason.STALLED else []
        for k, task in enumerate(lane):
            created_at = min(last_action, now - timedelta(hours=5))
            due_at = now + timedelta(hours=chance.uniform(24, 10 * 24))
            at_risk_at = due_at - min(0.2 * (due_at - created_at), (due_at - now) / 2)
            if k == 0 and reason is FlagReason.TASK_OVERDUE:
                due_at = self.ago(1, 20 * 24)
                created_at = min(created_at, due_at - timedelta(hours=4))
                at_risk_at = due_at - 0.2 * (due_at - created_at)
            elif k == 0 and reason is FlagReason.TASK_AT_RISK:
                due_at, at_risk_at = now + timedelta(hours=chance.uniform(2, 48)), self.ago(0.2, 24)
            assignee = chance.choice(self.team[setting]) if chance.random() < 0.5 else None
            self.rows[t.human_task].append(task | {
                "case_id": case_id, "created_at": created_at, "due_at": due_at, "at_risk_at": at_risk_at,
                "assignee": assignee, "priority": chance.randint(1, 5),
                "status": (TaskStatus.CLAIMED if assignee else TaskStatus.OPEN).value})
            if k == 0 and reason in (FlagReason.TASK_OVERDUE, FlagReason.TASK_AT_RISK):
                flag = Flag(reason, setting, model["process_id"], assignee)
        if reason is not FlagReason.STALLED:
            self.rows[t.timer] += [timer | {"case_id": case_id, "due_at": now + timedelta(hours=chance.uniform(2, 240))}
                                   for timer in self.timers.get(template, [])]
        if reason is FlagReason.TIMER_OVERDUE:
            attempts = chance.choice((0, 0, 1, 3))
            self.rows[t.timer].append(full_row(
                t.timer, case_id=case_id, task_ref=f"late-{case_id}", element_id=LATE_TIMER[setting],
                due_at=self.ago(0.5, 5 * 24), status=TimerStatus.PENDING.value, attempts=attempts,
                last_error="OperationalError: database is locked" if attempts else None))
        if reason is FlagReason.INCIDENT:
            element = self.tasks[template][0]["element_id"]
            self.rows[t.incident].append(full_row(
                t.incident, case_id=case_id, kind="script", element_id=element, task_ref=f"failed-{case_id}",
                message=f"Script failed at '{element}': NameError: name 'los_days' is not defined",
                data={"error_type": "NameError"}, status=IncidentStatus.OPEN.value, created_at=self.ago(0.2, 10 * 24)))
        self.rows[t.message_wait] += [wait | {"case_id": case_id} for wait in self.waits.get(template, [])]
        return flag


def full_row(table, **values) -> dict:
    """A row of every column but the id, None where not given: the rows of one multi-row insert share their keys."""
    return {name: None for name in table.c.keys() if name != "id"} | values


def scenarios(team: dict[str, list[str]]) -> list[tuple[str, User, str, dict]]:
    """(label, user, path, query) of every measured request; the CSV export is last."""
    member = team["acute_hospital"][0]
    pages = [
        ("default: stuck longest", SUPERVISOR, {}),
        ("sort by reason", SUPERVISOR, {"sort": "reason"}),
        ("sort by setting", SUPERVISOR, {"sort": "setting"}),
        ("sort by case number", SUPERVISOR, {"sort": "case"}),
        ("reason task_overdue", SUPERVISOR, {"reason": "task_overdue"}),
        ("reason idle", SUPERVISOR, {"reason": "idle"}),
        ("setting inpatient_rehab", SUPERVISOR, {"setting": "inpatient_rehab"}),
        ("process workers_comp_case", SUPERVISOR, {"process": "workers_comp_case"}),
        (f"assignee {member}", SUPERVISOR, {"assignee": member}),
        ("acute + task_overdue, by case number", SUPERVISOR,
         {"setting": "acute_hospital", "reason": "task_overdue", "sort": "case"}),
        ("page 50", SUPERVISOR, {"page": "50"}),
        ("page 100 (last)", SUPERVISOR, {"page": "100"}),
        ("supervisor covering acute only", ACUTE_SUPERVISOR, {}),
        ("acute only, page 20 by reason", ACUTE_SUPERVISOR, {"page": "20", "sort": "reason"}),
    ]
    return [(label, user, "/stuck", query) for label, user, query in pages] + [
        ("API list (limit 50)", SUPERVISOR, "/api/v1/stuck-cases", {}),
        ("API list, limit 500, offset 2500", SUPERVISOR, "/api/v1/stuck-cases", {"limit": "500", "offset": "2500"}),
        ("CSV export, every flag", SUPERVISOR, "/stuck.csv", {}),
    ]


def expected_total(planned: list[Flag], user: User, query: dict) -> int:
    """Count, from the planned flags, the ones a request should report."""
    filters = StuckFilters.from_args({"process": query.get("process_id", ""), **query})
    return sum(1 for flag in planned if user.covers(flag.setting)
               and (not filters.reason or flag.reason.value == filters.reason)
               and (not filters.setting or flag.setting == filters.setting)
               and (not filters.process or flag.process_id == filters.process)
               and (not filters.assignee or flag.assignee == filters.assignee))


def shown_and_total(path: str, response) -> tuple[int, int | None]:
    """The rows a response lists and the total it reports (None: the export states no total)."""
    body = response.get_data(as_text=True)
    if path.endswith(".csv"):
        return len(list(csv.reader(io.StringIO(body)))) - 1, None
    if path.startswith("/api/"):
        return len(response.json["items"]), response.json["total"]
    total = _TOTAL.search(body)
    return body.count("<tr data-case-id="), int(total.group(1)) if total else -1


def load(app, args, kind: str) -> tuple[str, dict[str, list[str]], list[Flag]]:
    """Fill a fresh database and run the scan; return the API token, the team and the planned flags."""
    services = app.extensions["casework"]
    started = time.perf_counter()
    token, team = add_people(services)
    planned = seed(services, cases=args.cases, stuck=args.stuck, real_cases=args.real_cases, team=team,
                   now=services.clock.now())
    loaded = time.perf_counter()
    scan = run_stuck_scan(services, owner="bench", every=timedelta(0), idle_days=IDLE_DAYS,
                          timer_grace=timedelta(minutes=5))
    wanted = Counter(flag.reason for flag in planned)
    if scan.counts != {reason: wanted[reason] for reason in FlagReason}:
        raise SystemExit(f"{kind}: the scan flagged {dict(scan.counts)}, not the planned {dict(wanted)}.")
    if kind == "postgresql":
        # A bulk load has no planner statistics until autovacuum's next pass; a live database has them.
        with services.uow() as uow:
            uow.connection.exec_driver_sql("ANALYZE " + ", ".join(ANALYZED))
            uow.commit()
    print(f"# {kind}: loaded {args.cases:,} cases in {loaded - started:.0f} s; the scan flagged "
          f"{scan.flagged:,} in {time.perf_counter() - loaded:.1f} s", flush=True)
    return token, team, planned


def time_request(app, client, *, user: User, path: str, query: dict, token: str, planned: list[Flag], args) -> dict:
    """Time one scenario's request, check what it answered, and time its handler calls and statements."""
    services = app.extensions["casework"]
    url = path + ("?" + urlencode(query) if query else "")
    fetch = lambda: client.get(url, headers={"Authorization": f"Bearer {token}"}, buffered=True)  # noqa: E731
    page_ms, response = timed(fetch, args.repeat, warm_ups=3)
    shown, total = shown_and_total(path, response)
    expected = expected_total(planned, user, query)
    offset = int(query.get("offset", 0)) + (int(query.get("page", 1)) - 1) * PAGE_SIZE
    rows = expected if path.endswith(".csv") else max(0, min(int(query.get("limit", PAGE_SIZE)), expected - offset))
    if response.status_code != 200 or total not in (None, expected) or shown != rows:
        raise SystemExit(f"{url}: HTTP {response.status_code}, total {total} and {shown} rows; "
                         f"expected {expected} and {rows} rows.")
    sql_ms = None
    if path == "/stuck":
        scoped = StuckFilters.from_args(query).query()
        sql_ms, _ = timed(lambda: (handlers.stuck_cases(services, actor=user, query=scoped),
                                   handlers.reassign_candidates(services, actor=user, setting=query.get("setting"))),
                          args.repeat, warm_ups=3)
    statements = sorted(statement_times(services, fetch, 3), key=lambda s: -s[0])
    if args.explain:
        print_plans(services, statements[:2])
    return {"median": statistics.median(page_ms), "p95": percentile(page_ms, 0.95),
            "sql": sql_ms and statistics.median(sql_ms), "statements": len(statements), "shown": shown,
            "total": expected, "page": path == "/stuck"}


def measure(kind: str, args, folder: Path) -> list[dict]:
    with bench_app(kind, folder) as app:
        services = app.extensions["casework"]
        token, team, planned = load(app, args, kind)
        clients = {}
        for user in (SUPERVISOR, ACUTE_SUPERVISOR):
            clients[user.username] = app.test_client()
            with clients[user.username].session_transaction() as session:
                session.update(session_for(accounts.active_user(services, username=user.username),
                                           services.clock.now()))
        results = []
        for label, user, path, query in scenarios(team):
            result = time_request(app, clients[user.username], user=user, path=path, query=query, token=token,
                                  planned=planned, args=args)
            results.append({"db": kind, "scenario": label} | result)
            print(f"# {kind} {label}: {result['median']:.1f} ms, {result['statements']} statements", flush=True)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--cases", type=int, default=100_000, help="active cases")
    parser.add_argument("--stuck", type=int, default=5_000, help="of them stuck (one flag each)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per scenario, after 3 warm-ups")
    parser.add_argument("--real-cases", type=int, default=60, help="cases started through the handler, then cloned")
    parser.add_argument("--explain", action="store_true", help="print the plan of each request's two slowest statements")
    args = parser.parse_args()
    results = on_each_database(measure, args)
    print("\n| db | scenario | median ms | p95 ms | SQL median ms | statements | rows shown | total |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for r in results:
        sql = f"{r['sql']:.1f}" if r["sql"] is not None else "–"
        print(f"| {r['db']} | {r['scenario']} | {r['median']:.1f} | {r['p95']:.1f} | {sql} | {r['statements']} "
              f"| {r['shown']:,} | {r['total']:,} |")
    for kind in dict.fromkeys(r["db"] for r in results):
        pages = [r for r in results if r["page"] and r["db"] == kind]
        slowest = max(pages, key=lambda r: r["median"])
        slow = [r for r in pages if r["median"] >= 500]
        print(f"\nTarget (issue 6), the stuck-case page under 500 ms, {kind}: slowest median {slowest['median']:.1f} ms "
              f"({slowest['scenario']}), p95 {slowest['p95']:.1f} ms. " + ("Met." if not slow else "Missed by: " + ", ".join(
                  f"{r['scenario']} ({r['median']:.0f} ms)" for r in slow)))


if __name__ == "__main__":
    main()
