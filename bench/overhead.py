"""Service overhead: completing a task through the HTTP API against SpiffWorkflow's own work for the step.

    .venv/bin/python bench/overhead.py                   # SQLite and PostgreSQL
    .venv/bin/python bench/overhead.py --db postgresql --cases 100

The step is the daily continued-stay review of an acute-hospital stay (the same as
bench/growth.py), on cases that have had their admission review, early screen and one
review timer: each case has the review task open, claimed by nobody.

- SpiffWorkflow alone: restore the stored state with SpiffWorkflow's serializer, complete
  the task, run the engine to the next wait, serialise: in process, no database.
- handler: `handlers.complete_task` in process (form check, load, engine, derived rows,
  events, commit), no HTTP.
- HTTP: POST /api/v1/tasks/<id>/complete with a bearer token to gunicorn (one sync
  worker) on the same database, one request at a time over a kept-alive connection:
  the client's wall time for the whole request.

Each way completes its own cases (a completion cannot be taken back). The peer's HTTP
figures (start a case to its first task, an inbox page, start+inbox+complete cycles per
second) are measured the same way, one request at a time, and printed after.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.growth import CASE_MANAGER, bare_review_step  # noqa: E402
from bench.harness import (  # noqa: E402
    ACUTE_START,
    ADMISSION_REVIEW,
    CONTINUED_STAY_REVIEW,
    EARLY_SCREEN,
    MovableClock,
    bench_app,
    databases,
    median,
    percentile,
    print_header,
    print_table,
    scratch_folder,
    stop_group,
    timed_ms,
)
from tests.integration.timer_fleet import free_port  # noqa: E402
from workflows import accounts, handlers  # noqa: E402

REVIEW = "continued_stay_review"


def review_tasks(services, clock: MovableClock, count: int) -> list[tuple[int, int]]:
    """Start `count` acute cases two days ago and bring each to its first continued-stay review: (case, task)."""
    started = []
    for n in range(count):
        case = handlers.start_case(services, actor=CASE_MANAGER, process_id="acute_stay",
                                   data=dict(ACUTE_START, mrn=f"MRN-{n:06d}"), subject_name=f"Patient {n}")
        for element_id, data in (("admission_review", ADMISSION_REVIEW), ("early_screen", EARLY_SCREEN)):
            handlers.complete_task(services, actor=CASE_MANAGER, task_id=open_task(services, case.id, element_id), data=data)
        started.append(case.id)
    clock.moment += timedelta(days=1)
    handlers.fire_due_timers(services)
    return [(case_id, open_task(services, case_id, REVIEW)) for case_id in started]


def open_task(services, case_id: int, element_id: str) -> int:
    with services.uow(read_only=True) as uow:
        return next(t.id for t in uow.tasks.for_case(case_id, open_only=True) if t.element_id == element_id)


def spiff_alone(services, tasks: list[tuple[int, int]], now: datetime) -> list[float]:
    engine = services.engine
    times = []
    for case_id, _ in tasks:
        with services.uow(read_only=True) as uow:
            case = uow.cases.get(case_id)
            bundle = services.bundles.get(uow, case.process_version_id)
        for _ in range(3):
            times.append(timed_ms(lambda: bare_review_step(engine, bundle, case.state, now))[0])
    return times


def in_process(services, tasks: list[tuple[int, int]]) -> list[float]:
    return [timed_ms(lambda: handlers.complete_task(services, actor=CASE_MANAGER, task_id=task_id,
                                                    data=CONTINUED_STAY_REVIEW))[0]
            for _, task_id in tasks]


class Server:
    """gunicorn with one sync worker on the benchmark's database, on a free port."""

    def __init__(self, database_url: str, folder: Path, workers: int = 1):
        self.port = free_port()
        env = dict(os.environ, CASEWORK_DATABASE_URL=database_url, CASEWORK_SECRET_KEY="bench",
                   CASEWORK_SCHEDULER="0", CASEWORK_BPMN_PATH=str(REPO / "bpmn"))
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning",
             "service:create_app()"],
            cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if Client(self.port, "").request("GET", "/api/v1/me")[0] in (200, 401, 404):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer: {self.process.stderr.read().decode()[-2000:]}")

    def stop(self) -> None:
        stop_group(self.process)


class Client:
    """One kept-alive HTTP connection with a bearer token."""

    def __init__(self, port: int, token: str):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        self.connection.request(method, path, body=None if body is None else json.dumps(body), headers=self.headers)
        response = self.connection.getresponse()
        payload = response.read()
        return response.status, (json.loads(payload) if payload.startswith(b"{") else None)

    def timed(self, method: str, path: str, body: dict | None = None, *, expect: int = 200) -> tuple[float, dict]:
        began = time.perf_counter()
        status, payload = self.request(method, path, body)
        ms = (time.perf_counter() - began) * 1000
        if status != expect:
            raise RuntimeError(f"{method} {path} answered {status}, not {expect}: {payload}")
        return ms, payload


def over_http(client: Client, tasks: list[tuple[int, int]]) -> list[float]:
    return [client.timed("POST", f"/api/v1/tasks/{task_id}/complete", {"data": CONTINUED_STAY_REVIEW})[0]
            for _, task_id in tasks]


def peer_cycles(client: Client, cycles: int) -> dict[str, list[float]]:
    """The peer's cycle, one request at a time: start a case, read the team's inbox, complete the first task."""
    times = {"start": [], "inbox": [], "complete": [], "cycle": []}
    for n in range(cycles):
        began = time.perf_counter()
        ms, case = client.timed("POST", "/api/v1/cases", {"process_id": "acute_stay", "subject_name": f"Cycle {n}",
                                                           "data": dict(ACUTE_START, mrn=f"MRN-C{n:05d}")}, expect=201)
        times["start"].append(ms)
        ms, page = client.timed("GET", "/api/v1/tasks?queue=true&limit=50")
        times["inbox"].append(ms)
        status, tasks = client.request("GET", f"/api/v1/tasks?case_id={case['id']}")
        task = next(t for t in tasks["items"] if t["element_id"] == "admission_review")
        ms, _ = client.timed("POST", f"/api/v1/tasks/{task['id']}/complete", {"data": ADMISSION_REVIEW})
        times["complete"].append(ms)
        times["cycle"].append((time.perf_counter() - began) * 1000)
    return times


def measure(kind: str, folder: Path, cases: int, cycles: int) -> tuple[list[list], list[list]]:
    clock = MovableClock(datetime.now(timezone.utc) - timedelta(days=2))
    with bench_app(kind, folder, CLOCK=clock) as app:
        services = app.extensions["casework"]
        _, token = accounts.add_user(services, username=CASE_MANAGER.username, roles=CASE_MANAGER.roles)
        warm, bare, local, remote = (review_tasks(services, clock, n) for n in (5, cases, cases, cases))
        spiff = spiff_alone(services, bare, clock.moment)
        handler = in_process(services, local)
        server = Server(app.bench_database.url, folder)
        try:
            client = Client(server.port, token)
            over_http(client, warm)  # the worker parses the diagrams on its first request
            http_times = over_http(client, remote)
            peer = peer_cycles(client, cycles)
        finally:
            server.stop()
    base = median(spiff)
    rows = [[kind, what, median(times), percentile(times, 0.95), median(times) / base, len(times)]
            for what, times in (("SpiffWorkflow alone (restore, complete, run, serialise)", spiff),
                                ("handler in process (+ form, database, derived rows, events)", handler),
                                ("HTTP API through gunicorn (+ HTTP, token, JSON)", http_times))]
    peer_rows = [[kind, what, median(peer[key]), percentile(peer[key], 0.95), peer_ms, peer_ms / median(peer[key])]
                 for key, what, peer_ms in (("start", "start a case, run to its first task", 65.0),
                                            ("inbox", "team inbox page (API, 50 rows)", 16.0),
                                            ("complete", "complete a task", 60.0))]
    cycle_rate = 1000 / median(peer["cycle"])
    peer_rows.append([kind, "start + inbox + complete cycles per second", cycle_rate, float("nan"), 6.8,
                      cycle_rate / 6.8])
    return rows, peer_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--cases", type=int, default=60, help="review completions timed each way")
    parser.add_argument("--cycles", type=int, default=40, help="start+inbox+complete cycles for the peer comparison")
    args = parser.parse_args()
    print_header()
    rows, peer_rows = [], []
    with scratch_folder() as folder:
        for kind in databases(args.db):
            mine, peer = measure(kind, folder, args.cases, args.cycles)
            rows += mine
            peer_rows += peer
    print_table(["db", "one review completion", "median ms", "p95 ms", "x SpiffWorkflow alone", "samples"], rows)
    print()
    print_table(["db", "the peer's measure (HTTP, one client)", "median", "p95", "peer (SpiffArena)",
                 "x better than the peer"], peer_rows)


if __name__ == "__main__":
    main()
