"""Real scheduler processes for the timer tests (and bench/timers.py): seed timers, start, watch, kill.

Seeding clones one real case, made by the service from tests/data/timers, into
thousands of case rows with a timer each, so a test can have 2,000 timers due at the
same instant without running 2,000 case starts.
"""
from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, insert, select

from service.persistence import UnitOfWorkFactory, make_engine, tables as t, upgrade_database
from service.persistence.database import BEGIN_READ, SQLITE_BEGIN
from workflows import accounts, catalog, deployment, handlers
from workflows.engine import Engine
from workflows.model import TimerStatus, User
from workflows.services import Services

REPO = Path(__file__).resolve().parents[2]
TIMER_DIAGRAMS = REPO / "tests" / "data" / "timers"
DESIGNER = User("fleet-designer", ["designer"])


class WallClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


def seed_timers(database_url: str, *, count: int, due_at: datetime | list[datetime]) -> list[int]:
    """Make `count` active cases of `wake_once`, each waiting on one timer; return their ids.

    `due_at` is one instant for all, or one per case.
    """
    due_times = due_at if isinstance(due_at, list) else [due_at] * count
    upgrade_database(database_url)
    uow = UnitOfWorkFactory(make_engine(database_url))
    try:
        services = Services(uow=uow, clock=WallClock(), engine=Engine())
        deployment.deploy_diagram_set(services, diagram_set=catalog.read_diagram_set(TIMER_DIAGRAMS), actor=DESIGNER)
        # The template waits far ahead (a past time would fire as it starts); every copy gets its own time.
        template_due = datetime.now(timezone.utc) + timedelta(days=365)
        template = handlers.start_case(services, actor=DESIGNER, process_id="wake_once",
                                       data={"fire_at": template_due.isoformat()}, subject_name="template")
        with uow() as work:
            [timer] = work.timers.for_case(template.id)
            case_row = work.connection.execute(select(t.case_record).where(t.case_record.c.id == template.id)).one()._asdict()
            first_new_id = case_row["id"] + 1
            work.connection.execute(t.case_record.update().where(t.case_record.c.id == template.id)
                                    .values(state=_with_due(case_row["state"], template_due, due_times[0])))
            work.connection.execute(t.timer.update().where(t.timer.c.id == timer.id).values(due_at=due_times[0]))
            rows, timers = [], []
            for n, due in enumerate(due_times[1:]):
                case_id = first_new_id + n
                rows.append(case_row | {"id": case_id, "subject_name": f"fleet case {n + 2}",
                                        "state": _with_due(case_row["state"], template_due, due)})
                timers.append({"case_id": case_id, "task_ref": timer.task_ref, "element_id": timer.element_id,
                               "due_at": due, "status": TimerStatus.PENDING.value, "attempts": 0})
            for start in range(0, len(rows), 500):
                work.connection.execute(insert(t.case_record), rows[start:start + 500])
                work.connection.execute(insert(t.timer), timers[start:start + 500])
            if work.connection.dialect.name == "postgresql":
                work.connection.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('case_record', 'id'), (SELECT max(id) FROM case_record))")
            work.commit()
        return [template.id] + [first_new_id + n for n in range(len(due_times) - 1)]
    finally:
        uow.dispose()


def _with_due(state: str, template_due: datetime, due: datetime) -> str:
    # The engine keeps the timer's due time in the case state; give each clone its own.
    return state.replace(template_due.isoformat(), due.isoformat())


def add_user(database_url: str, username: str = "fleet-admin") -> str:
    uow = UnitOfWorkFactory(make_engine(database_url))
    try:
        _, token = accounts.add_user(Services(uow=uow, clock=WallClock()), username=username, roles=["admin"])
        return token
    finally:
        uow.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(port: int, path: str, *, timeout: float = 2) -> bool:
    """Whether a server on this machine's `port` answers GET `path` with 200 (False while it is not up)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start(name: str, args: list[str], *, database_url: str, workdir: Path, **settings: str) -> Process:
    """Start `casework <args>` against the database, with CASEWORK_<setting> overrides."""
    env = dict(os.environ, CASEWORK_DATABASE_URL=database_url, CASEWORK_BPMN_PATH=str(TIMER_DIAGRAMS),
               PYTHONUNBUFFERED="1")
    env.update({f"CASEWORK_{key.upper()}": str(value) for key, value in settings.items()})
    log = workdir / f"{name}.log"
    handle = log.open("w")
    casework = Path(sys.executable).with_name("casework")
    popen = subprocess.Popen([str(casework), *args], cwd=workdir, env=env,
                             stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    handle.close()
    return Process(name, popen, log)


def wait_for(condition, *, timeout: float, interval: float = 0.1, what: str = "condition", processes=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for process in processes:
            if process.popen.poll() is not None:
                raise AssertionError(f"{process.name} exited with {process.popen.returncode}:\n{process.output()[-3000:]}")
        time.sleep(interval)
    logs = "\n".join(f"--- {p.name}\n{p.output()[-2000:]}" for p in processes)
    raise AssertionError(f"Timed out after {timeout} s waiting for {what}\n{logs}")


def scheduler_started(process: Process) -> bool:
    return "Scheduler " in process.output() and " started" in process.output()


class TimerLedger:
    """Reads what happened to the seeded timers, from the timer rows and the case events."""

    def __init__(self, database_url: str):
        # Plain read transactions: on SQLite, a reader asking for the write lock would queue behind the workers.
        self.engine = make_engine(database_url).execution_options(**{SQLITE_BEGIN: BEGIN_READ})

    def close(self) -> None:
        self.engine.dispose()

    def pending(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(t.timer)
                                      .where(t.timer.c.status == TimerStatus.PENDING.value)).scalar_one()

    def timers(self) -> list[dict]:
        with self.engine.connect() as connection:
            return [row._asdict() for row in connection.execute(select(t.timer).order_by(t.timer.c.id))]

    def fired_events(self) -> list[dict]:
        """Every timer_fired event: case id, timer id, worker, due and firing time."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(t.case_event.c.case_id, t.case_event.c.at, t.case_event.c.payload)
                                      .where(t.case_event.c.kind == "timer_fired"))
            return [{"case_id": r.case_id, "at": r.at, **r.payload} for r in rows]

    def fires_per_case(self, case_ids: list[int]) -> Counter:
        fired = Counter(event["case_id"] for event in self.fired_events())
        return Counter(fired.get(case_id, 0) for case_id in case_ids)


def lateness(events: list[dict]) -> list[float]:
    """Seconds between each timer's due time and its firing, sorted."""
    return sorted(event["late_seconds"] for event in events)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(fraction * (len(values) - 1))))]


def in_the_future(seconds: float) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)
