"""What the benchmarks share: a fresh database with the bundled diagrams, a movable clock, timing, tables."""
from __future__ import annotations

import os
import platform
import signal
import subprocess
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import insert  # noqa: E402

from bench.timers import Database  # noqa: E402
from service import create_app  # noqa: E402
from service.cli import deploy_folder  # noqa: E402
from tests.integration.timer_fleet import percentile as _sorted_percentile  # noqa: E402

# The acute-hospital test data every latency benchmark starts its cases with: a self-pay inpatient
# (no payer authorisation, no Medicare notices), so the only recurring work is the daily review.
ACUTE_START = {
    "patient_name": "Henry Irving", "mrn": "MRN-855301", "order_type": "inpatient",
    "order_at": "2026-04-06T08:00:00-04:00", "payer_name": "Self pay", "payer_type": "self_pay",
    "working_diagnosis": "Ischemic stroke", "working_drg": "065",
}
ADMISSION_REVIEW = {"status_recommendation": "inpatient", "criteria_met": True, "expected_midnights": 3}
EARLY_SCREEN = {"evaluation_needed": False, "prior_living_situation": "home_alone", "evaluation_requested_by": "nobody"}
CONTINUED_STAY_REVIEW = {"criteria_met": True, "status_recommendation": "inpatient", "avoidable_day": False,
                         "send_to_payer": False}
FIRST_MOMENT = datetime(2026, 4, 6, 12, 10, tzinfo=timezone.utc)


class MovableClock:
    """The services' clock, moved by the benchmark (timers fall due when it says so)."""

    def __init__(self, now: datetime = FIRST_MOMENT):
        self.moment = now

    def now(self) -> datetime:
        return self.moment


@contextmanager
def bench_app(kind: str, folder: Path, **config):
    """An app with the bundled diagrams on a fresh SQLite file or PostgreSQL schema, dropped afterwards."""
    database = Database(kind, folder)
    app = None
    try:
        app = create_app({"DATABASE_URL": database.url, "SECRET_KEY": "bench", "SCHEDULER_ENABLED": False,
                          "BPMN_PATH": str(REPO / "bpmn"), **config})
        deploy_folder(app, REPO / "bpmn")
        app.bench_database = database
        yield app
    finally:
        if app is not None:
            app.extensions["casework"].uow.dispose()
        database.drop()


def bulk_insert(connection, table, rows: list[dict]) -> None:
    """Insert rows a thousand per statement; on PostgreSQL move the id sequence past the ids given."""
    for start in range(0, len(rows), 1000):
        connection.execute(insert(table), rows[start:start + 1000])
    if rows and "id" in rows[0] and connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), (SELECT max(id) FROM {table.name}))")


def stop_group(popen: subprocess.Popen, steps=((signal.SIGTERM, 30), (signal.SIGKILL, 10))) -> None:
    """Signal a server's process group with each (signal, seconds to wait) in turn until it has exited."""
    for sig, wait in steps:
        if popen.poll() is not None:
            return
        try:
            os.killpg(popen.pid, sig)
        except ProcessLookupError:
            return
        try:
            popen.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


def databases(choice: str) -> list[str]:
    return ["sqlite", "postgresql"] if choice == "both" else [choice]


def print_header() -> None:
    """The machine and the command, so a pasted table says where it came from."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {load:.2f} at the start")
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}")


@contextmanager
def scratch_folder():
    with tempfile.TemporaryDirectory(prefix="casework-bench-") as folder:
        yield Path(folder)


def timed_ms(action) -> tuple[float, object]:
    began = time.perf_counter()
    result = action()
    return (time.perf_counter() - began) * 1000, result


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values, fraction: float) -> float:
    """The percentile (fraction 0-1) of unsorted numbers."""
    return _sorted_percentile(sorted(values), fraction)


def print_table(headers: list[str], rows: list[list]) -> None:
    """A Markdown table: paste it into BENCHMARKS.md as it is."""
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" if n == 0 else "--:" for n in range(len(headers))) + "|")
    for row in rows:
        print("| " + " | ".join(cell(value) for value in row) + " |")
