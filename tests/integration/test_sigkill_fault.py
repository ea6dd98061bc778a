"""The server killed with SIGKILL while clients complete tasks and timers fire (issue 8).

Clients start cases of tests/data/fault and complete their tasks over HTTP while the
cases' timers (one to two seconds) fire. The server's process group is killed with
SIGKILL twice and restarted on the same database each time. Every request is logged
with whether it was acknowledged (a 2xx answer), refused (another answer), or got no
answer. Afterwards the database must agree with the logs and with itself: every
acknowledged write is there once, nothing is there that no request asked for, no timer
fired twice, and every case's rows say what its stored workflow says.

The last test pins down, step by step, what the first run of this one found: a person's
action fired the case's due timers in passing, unaudited.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from service.persistence import UnitOfWorkFactory, make_engine, tables as t, upgrade_database
from service.persistence.database import BEGIN_READ, SQLITE_BEGIN
from tests.integration.timer_fleet import answers, free_port, wait_for
from workflows import accounts, catalog, deployment, handlers
from workflows.engine import Engine
from workflows.model import User
from workflows.services import Services

FAULT_DIAGRAMS = Path(__file__).resolve().parents[1] / "data" / "fault"
PROCESS = "ward_round"
CLIENTS = 6
PHASE_SECONDS = 5  # clients work this long before each kill, and after the last restart
KILLS = 2
HTTP_TIMEOUT = 10
ACK, REFUSED, NO_ANSWER = "acknowledged", "refused", "no answer"


class WallClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


@dataclass
class Attempt:
    """One request a client sent, and what came of it."""

    client: str
    kind: str  # "start" or "complete"
    request_id: str
    task_id: int | None = None
    outcome: str = NO_ANSWER
    status: int | None = None
    case_id: int | None = None  # the case an acknowledged start answered with
    error: str = ""
    never_connected: bool = False  # refused at connect: the server cannot have seen it


@dataclass
class Casework:
    """One server incarnation (`casework run`, or `casework worker`), in a process group of its own."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None
    incarnations: int = 0

    def start(self) -> None:
        self.incarnations += 1
        with self.log.open("a") as handle:
            handle.write(f"\n=== {self.name} incarnation {self.incarnations}\n")
            handle.flush()
            self.popen = subprocess.Popen(
                [str(Path(sys.executable).with_name("casework")), *self.args], env=self.env, cwd=self.log.parent,
                stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crashing host would."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def exited(self) -> int | None:
        return None if self.popen is None else self.popen.poll()


class Client(threading.Thread):
    """A case manager's script: start cases and complete tasks from the queue, logging every request."""

    def __init__(self, name: str, token: str, port: int, stop: threading.Event, seed: int):
        super().__init__(name=name, daemon=True)
        self.token, self.port, self.stop_event = token, port, stop
        self.random = random.Random(seed)
        self.attempts: list[Attempt] = []
        self.outages = 0

    def run(self) -> None:
        sequence = 0
        while not self.stop_event.is_set():
            status, body, _ = self._request("GET", "/api/v1/tasks?queue=true&limit=100")
            if status != 200:
                self.outages += 1
                time.sleep(0.1)
                continue
            open_tasks = body["items"]
            sequence += 1
            request_id = f"{self.name}-{sequence}"
            if len(open_tasks) < 4 or self.random.random() < 0.25:
                self._start_case(request_id)
            else:
                self._complete(self.random.choice(open_tasks)["id"], request_id)
            time.sleep(self.random.uniform(0.01, 0.06))

    def _start_case(self, request_id: str) -> None:
        attempt = Attempt(self.name, "start", request_id)
        self.attempts.append(attempt)
        payload = {"process_id": PROCESS, "subject_name": "Fault test patient", "subject_ref": request_id}
        self._send(attempt, "POST", "/api/v1/cases", payload)

    def _complete(self, task_id: int, request_id: str) -> None:
        attempt = Attempt(self.name, "complete", request_id, task_id=task_id)
        self.attempts.append(attempt)
        self._send(attempt, "POST", f"/api/v1/tasks/{task_id}/complete", {"data": {"request_id": request_id}})

    def _send(self, attempt: Attempt, method: str, path: str, payload: dict) -> None:
        status, body, error = self._request(method, path, payload)
        attempt.status, attempt.error = status, error
        if status is None:
            attempt.outcome = NO_ANSWER
            attempt.never_connected = error.startswith("ConnectionRefusedError")
            self.outages += 1
            time.sleep(0.1)
        elif 200 <= status < 300:
            attempt.outcome = ACK
            attempt.case_id = body.get("id") if attempt.kind == "start" else None
        else:
            attempt.outcome = REFUSED

    def _request(self, method: str, path: str, payload: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        headers = {"Authorization": f"Bearer {self.token}", "Connection": "close"}
        body = None
        if payload is not None:
            body, headers["Content-Type"] = json.dumps(payload), "application/json"
        try:
            try:
                connection.connect()
            except OSError as error:
                return None, None, f"{type(error).__name__}: {error}"
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                text = response.read()
            except (OSError, http.client.HTTPException) as error:
                return None, None, f"in flight: {type(error).__name__}: {error}"
            try:
                return response.status, json.loads(text or b"{}"), ""
            except ValueError:
                return response.status, {}, text[:200].decode(errors="replace")
        finally:
            connection.close()


def scheduler_starts(process: Casework) -> int:
    return sum(1 for line in process.output().splitlines() if "Scheduler " in line and " started" in line)


class Ledger:
    """Reads back what the database holds, in plain read transactions."""

    def __init__(self, database_url: str):
        self.engine = make_engine(database_url).execution_options(**{SQLITE_BEGIN: BEGIN_READ})

    def rows(self, table, *where) -> list[dict]:
        with self.engine.connect() as connection:
            return [row._asdict() for row in connection.execute(select(table).where(*where).order_by(table.c.id))]

    def fired_count(self) -> int:
        return len(self.rows(t.case_event, t.case_event.c.kind == "timer_fired"))

    def pending_timers(self) -> int:
        return len(self.rows(t.timer, t.timer.c.status == "pending"))

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fault_database(request, tmp_path):
    """A file SQLite database (the embedded scheduler only), or a PostgreSQL schema with a worker beside the server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'casework.db'}", False
    return request.getfixturevalue("postgres_database_url"), True


@pytest.fixture
def servers():
    started: list[Casework] = []
    yield started
    for server in started:
        server.kill()


def make_clerks(database_url: str) -> dict[str, str]:
    """Create one API user per client with the case_manager role; return username -> token."""
    upgrade_database(database_url)
    uow = UnitOfWorkFactory(make_engine(database_url))
    try:
        services = Services(uow=uow, clock=WallClock())
        return {f"clerk-{n}": accounts.add_user(services, username=f"clerk-{n}", roles=["case_manager"])[1]
                for n in range(1, CLIENTS + 1)}
    finally:
        uow.dispose()


def test_sigkilled_server_loses_no_acknowledged_write_fires_no_timer_twice_and_leaves_no_case_half_written(
    fault_database, servers, tmp_path
):
    database_url, with_worker = fault_database
    tokens = make_clerks(database_url)
    port = free_port()
    env = dict(os.environ, CASEWORK_DATABASE_URL=database_url, CASEWORK_SECRET_KEY="sigkill-fault-test",
               CASEWORK_BPMN_PATH=str(FAULT_DIAGRAMS), CASEWORK_TIMER_POLL_SECONDS="0.2",
               CASEWORK_TIMER_LEASE_SECONDS="3", CASEWORK_SCAN_SECONDS="3600", PYTHONUNBUFFERED="1")
    web = Casework("web", ["run", "--port", str(port)], env, tmp_path / "web.log")
    servers.append(web)
    worker = Casework("worker", ["worker"], env, tmp_path / "worker.log") if with_worker else None
    ledger = Ledger(database_url)

    def bring_up(*processes: Casework) -> None:
        for process in processes:
            process.start()
        wait_for(lambda: answers(port, "/api/v1/openapi.json"), timeout=60, what="the server to serve on its database", processes=[web])
        for process in processes:
            wait_for(lambda: scheduler_starts(process) >= process.incarnations or process.exited() is not None,
                     timeout=30, what=f"{process.name}'s scheduler")
            assert process.exited() is None, f"{process.name} exited on restart:\n{process.output()[-3000:]}"

    if worker is not None:
        servers.append(worker)
    bring_up(*servers)

    stop = threading.Event()
    clients = [Client(name, token, port, stop, seed=n) for n, (name, token) in enumerate(sorted(tokens.items()))]
    for client in clients:
        client.start()
    fired_before_kill, outages_at_kill, acknowledged_at_kill = [], [], []
    try:
        for kill in range(KILLS):
            time.sleep(PHASE_SECONDS)
            fired_before_kill.append(ledger.fired_count())
            outages_at_kill.append(sum(c.outages for c in clients))
            acknowledged_at_kill.append(sum(a.outcome == ACK for c in clients for a in list(c.attempts)))
            # The first kill takes the web server alone (a worker, if any, fires on); the second takes everything.
            victims = [web] + ([worker] if worker is not None and kill == KILLS - 1 else [])
            for victim in victims:
                victim.kill()
            bring_up(*victims)
        time.sleep(PHASE_SECONDS)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=HTTP_TIMEOUT + 5)
    # Clients have stopped: every waiting timer falls due within two seconds, and must fire.
    wait_for(lambda: ledger.pending_timers() == 0, timeout=30, interval=0.2, what="the remaining timers to fire")
    time.sleep(1)  # a timer that would fire twice has had its chance
    for process in (web, worker):
        if process is not None:
            process.stop()
    fired_at_end = ledger.fired_count()
    ledger.close()

    attempts = [attempt for client in clients for attempt in client.attempts]
    problems = (check_client_log(database_url, attempts) + check_timers(database_url)
                + check_cases(database_url))
    logs = "\n".join(p.output()[-3000:] for p in (web, worker) if p is not None)
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40]) + f"\n--- server logs\n{logs}"

    # The run tested what it claims: timers fired before each kill and after, the clients met
    # each outage, and the restarted servers acknowledged work after each kill.
    outcomes = Counter((a.kind, a.outcome) for a in attempts)
    assert 0 < fired_before_kill[0] < fired_before_kill[1] < fired_at_end, (fired_before_kill, fired_at_end)
    assert outages_at_kill[0] < outages_at_kill[1] < sum(c.outages for c in clients), outages_at_kill
    assert 0 < acknowledged_at_kill[0] < acknowledged_at_kill[1] < sum(a.outcome == ACK for a in attempts)
    assert outcomes[("start", ACK)] >= 10 and outcomes[("complete", ACK)] >= 10, outcomes
    in_flight = sum(1 for a in attempts if a.outcome == NO_ANSWER and not a.never_connected)
    print(f"\n{database_url.split(':')[0]}: {dict(outcomes)}, {in_flight} cut off in flight; "
          f"timers fired before the kills {fired_before_kill}, at the end {fired_at_end}")


def check_client_log(database_url: str, attempts: list[Attempt]) -> list[str]:
    """Compare every logged request with the cases and the task_completed events it may have made."""
    ledger = Ledger(database_url)
    try:
        cases_by_ref = defaultdict(list)
        for case in ledger.rows(t.case_record):
            cases_by_ref[case["subject_ref"]].append(case)
        tasks = {task["id"]: task for task in ledger.rows(t.human_task)}
        completions = ledger.rows(t.case_event, t.case_event.c.kind == "task_completed")
    finally:
        ledger.close()
    by_request = defaultdict(list)
    for event in completions:
        by_request[(event["payload"].get("data") or {}).get("request_id")].append(event)
    problems = []
    logged = {attempt.request_id: attempt for attempt in attempts}
    for attempt in attempts:
        said = f"{attempt.kind} {attempt.request_id} ({attempt.outcome}{', never connected' if attempt.never_connected else ''})"
        if attempt.status is not None and attempt.status >= 500 or attempt.status in (400, 401, 403, 422):
            problems.append(f"{said}: answered {attempt.status}: {attempt.error}")
        made = cases_by_ref[attempt.request_id] if attempt.kind == "start" else by_request[attempt.request_id]
        if attempt.outcome == ACK:
            if len(made) != 1:
                problems.append(f"{said}: acknowledged, but made {len(made)} record(s)")
            elif attempt.kind == "start" and made[0]["id"] != attempt.case_id:
                problems.append(f"{said}: acknowledged case {attempt.case_id}, stored as case {made[0]['id']}")
        elif attempt.outcome == REFUSED or attempt.never_connected:
            if made:
                problems.append(f"{said}: not done, yet made {len(made)} record(s)")
        elif len(made) > 1:
            problems.append(f"{said}: made {len(made)} records")
        if attempt.kind == "complete" and len(made) == 1:
            task = tasks.get(attempt.task_id)
            event = made[0]
            if event["payload"].get("task_id") != attempt.task_id:
                problems.append(f"{said}: its completion was recorded on task {event['payload'].get('task_id')}")
            if task is None or task["status"] != "completed" or task["completed_by"] != attempt.client \
                    or event["actor"] != attempt.client:
                problems.append(f"{said}: its completion event is there, the task is not completed by "
                                f"{attempt.client}: {task and (task['status'], task['completed_by'])}")
    for ref, cases in cases_by_ref.items():
        if ref not in logged or logged[ref].kind != "start":
            problems.append(f"cases {[c['id'] for c in cases]} were made by no logged start ({ref!r})")
    for ref, events in by_request.items():
        if ref not in logged or logged[ref].kind != "complete":
            problems.append(f"task_completed event(s) {[e['id'] for e in events]} answer no logged completion ({ref!r})")
    return problems


def check_timers(database_url: str) -> list[str]:
    """At most one timer_fired event per timer row; an event only for a fired row; no failed timer."""
    ledger = Ledger(database_url)
    try:
        timers = {timer["id"]: timer for timer in ledger.rows(t.timer)}
        fired = ledger.rows(t.case_event, t.case_event.c.kind == "timer_fired")
    finally:
        ledger.close()
    problems = []
    per_timer = Counter(event["payload"].get("timer_id") for event in fired)
    for timer_id, count in per_timer.items():
        row = timers.get(timer_id)
        if timer_id is None or row is None:
            problems.append(f"{count} timer_fired event(s) name no timer row ({timer_id})")
        elif count > 1:
            workers = [e["payload"].get("worker") for e in fired if e["payload"].get("timer_id") == timer_id]
            problems.append(f"timer {timer_id} ({row['element_id']}, case {row['case_id']}) fired {count} times: {workers}")
        elif row["status"] != "fired":
            problems.append(f"timer {timer_id} has a timer_fired event but is {row['status']}")
    for row in timers.values():
        if row["status"] == "failed" or row["last_error"]:
            problems.append(f"timer {row['id']} ({row['element_id']}) failed: {row['last_error']}")
    return problems


def check_cases(database_url: str) -> list[str]:
    """Every case whole: its state loads, and its tasks, timers, status and events say what the state says."""
    uow = UnitOfWorkFactory(make_engine(database_url))
    services = Services(uow=uow, clock=WallClock(), engine=Engine())
    problems = []
    try:
        with uow(read_only=True) as work:
            connection = work.connection
            cases = [row._asdict() for row in connection.execute(select(t.case_record))]
            tasks, timers, events = defaultdict(list), defaultdict(list), defaultdict(list)
            for table, into in ((t.human_task, tasks), (t.timer, timers), (t.case_event, events)):
                for row in connection.execute(select(table).order_by(table.c.id)):
                    into[row.case_id].append(row._asdict())
            incidents = [row._asdict() for row in connection.execute(select(t.incident))]
            for case in cases:
                problems += _check_case(services, work, case, tasks[case["id"]], timers[case["id"]], events[case["id"]])
    finally:
        uow.dispose()
    problems += [f"case {i['case_id']}: incident {i['kind']}: {i['message']}" for i in incidents]
    return problems


def _check_case(services: Services, work, case: dict, tasks: list[dict], timers: list[dict], events: list[dict]) -> list[str]:
    name = f"case {case['id']} ({case['status']})"
    kinds = Counter(event["kind"] for event in events)
    problems = []
    if kinds["case_opened"] != 1:
        problems.append(f"{name}: {kinds['case_opened']} case_opened events")
    try:
        run = services.engine.resume(services.bundles.get(work, case["process_version_id"]), case["state"])
    except Exception as error:
        return problems + [f"{name}: its stored state does not load: {type(error).__name__}: {error}"]
    open_rows = {task["task_ref"] for task in tasks if task["status"] in ("open", "claimed")}
    ready = {task.task_ref for task in run.ready_tasks()}
    if open_rows != ready:
        problems.append(f"{name}: open task rows {sorted(open_rows)} but the engine has ready {sorted(ready)}")
    pending = {(timer["task_ref"], timer["due_at"]) for timer in timers if timer["status"] == "pending"}
    waiting = {(timer.task_ref, timer.due_at) for timer in run.waiting_timers()}
    if pending != waiting:
        problems.append(f"{name}: pending timer rows {sorted(pending)} but the engine waits on {sorted(waiting)}")
    finished = case["status"] == "completed"
    if finished != run.completed or case["status"] not in ("active", "completed") or kinds["case_completed"] != finished:
        problems.append(f"{name}: the engine says completed={run.completed}; "
                        f"{kinds['case_completed']} case_completed event(s)")
    for task in tasks:
        mine = Counter(e["kind"] for e in events if (e["payload"] or {}).get("task_id") == task["id"])
        expected = {"open": 0, "claimed": 0, "completed": 1, "cancelled": 0}[task["status"]]
        if mine["task_created"] != 1 or mine["task_completed"] != expected \
                or mine["task_cancelled"] != (task["status"] == "cancelled"):
            problems.append(f"{name}: task {task['id']} ({task['element_id']}) is {task['status']} "
                            f"with events {dict(mine)}")
    fired = Counter(e["payload"]["element_id"] for e in events if e["kind"] == "timer_fired")
    if any(count > 1 for count in fired.values()):
        problems.append(f"{name}: a timer element fired more than once: {dict(fired)}")
    chased = any(task["element_id"] == "chase_review" for task in tasks)
    if chased != bool(fired["review_deadline"]):
        problems.append(f"{name}: chase task {chased}, yet the review deadline fired {fired['review_deadline']} time(s)")
    for timer in timers:
        recorded = sum(1 for e in events if e["kind"] == "timer_fired" and e["payload"].get("timer_id") == timer["id"])
        if (timer["status"] == "fired") != (recorded == 1):
            problems.append(f"{name}: timer {timer['id']} ({timer['element_id']}) is {timer['status']} "
                            f"with {recorded} timer_fired event(s)")
    return problems


class SettableClock:
    def __init__(self, now: datetime):
        self.moment = now

    def now(self) -> datetime:
        return self.moment


def test_a_persons_completion_leaves_due_timers_to_the_scheduler_and_a_beaten_deadline_is_cancelled(uow_factory):
    """What the fault run found: completing the review fired the due reminder in passing, with no
    timer_fired event, and recorded the deadline the person beat as fired."""
    start = datetime(2030, 3, 4, 9, 0, tzinfo=timezone.utc)
    clock = SettableClock(start)
    services = Services(uow=uow_factory, clock=clock, engine=Engine())
    deployment.deploy_diagram_set(services, diagram_set=catalog.read_diagram_set(FAULT_DIAGRAMS),
                                  actor=User("designer", ["designer"]))
    clerk = User("clerk", ["case_manager"])
    case = handlers.start_case(services, actor=clerk, process_id=PROCESS)

    def open_task() -> int:
        [task] = handlers.get_case(services, case_id=case.id).open_tasks
        return task.id

    handlers.complete_task(services, actor=clerk, task_id=open_task(), data={"request_id": "record"})
    clock.moment = start + timedelta(seconds=1.1)
    assert handlers.fire_due_timers(services) == 1  # the short wait; the review and the reminder begin
    # The reminder fell due at 2.6 s and the review's deadline at 3.1 s; the person completes the review first.
    clock.moment = start + timedelta(seconds=3.5)
    handlers.complete_task(services, actor=clerk, task_id=open_task(), data={"request_id": "review"})

    detail = handlers.get_case(services, case_id=case.id)
    assert detail.case.status.value == "active" and detail.open_tasks == []
    assert [timer.element_id for timer in detail.pending_timers] == ["reminder_wait"], "it waits for the scheduler"
    with uow_factory(read_only=True) as uow:
        statuses = {timer.element_id: timer.status.value for timer in uow.timers.for_case(case.id, pending_only=False)}
    assert statuses == {"short_wait": "fired", "reminder_wait": "pending", "review_deadline": "cancelled"}

    assert handlers.fire_due_timers(services) == 1
    detail = handlers.get_case(services, case_id=case.id)
    assert detail.case.status.value == "completed"
    fired = [event.payload["element_id"] for event in detail.events if event.kind == "timer_fired"]
    assert fired == ["short_wait", "reminder_wait"]
