"""Load: concurrent clients completing tasks over HTTP against gunicorn, then a check that no update was lost.

    .venv/bin/python bench/load.py                        # PostgreSQL, 32 clients, 30 s, gunicorn 3 sync workers
    .venv/bin/python bench/load.py --clients 32 --seconds 30 --workers 2 --threads 2   # gthread workers
    .venv/bin/python bench/load.py --db sqlite --workers 1
    .venv/bin/python bench/load.py --profile --workers 1 --seconds 15   # where a completion's server time goes

The deployment of README "Deployment for more than one machine", on one machine: a fresh
PostgreSQL schema (or SQLite file), `casework db upgrade` and `casework deploy bpmn` run
once, then `gunicorn -w N 'service:create_app()'` and one `casework worker`. One API user
per client (the lanes case_manager, clinical_liaison, nurse_case_manager, every setting).
A few real cases per setting are started through the handler with the start data of one
process test each (acute_hospital, inpatient_rehab, workers_comp; the test's dates moved
to now), and cloned (stored state, open tasks, timers, message waits copied) to enough
cases for the run: half acute (three open tasks each: admission review, IM, early
screen), a quarter each IRF (referral intake) and workers' comp (acknowledge referral).
Each task's form data is the data its process test completes it with. Before the run, one
more real case per setting has its tasks completed through the handler with that data, so
every completion the clients send is known to be valid.

Clients are threads in this process, each with one http.client connection (kept alive
when the server allows it; gunicorn's sync workers close it after each response). Each
takes the next case from a shared queue and completes its open tasks one after another,
POST /api/v1/tasks/<id>/complete with no pause (`--think-ms` adds one). A share of cases
(`--contested`, 5%) is set aside for pairs of clients: after every few cases of the
queue, both clients of a pair wait for each other and send the same completion together;
exactly one must get 200 and the other 409. After `--warmup` seconds, completions (200 answers) and
request latencies are counted over `--seconds`. Then everything is stopped and the
database is checked: every 200 is recorded once (the task completed by that user, one
task_completed event by them), no task has two completions, no task is completed without
a 200, every contested pair has one winner, every case a client touched still loads in
the engine with its open task rows and pending timer rows what the engine says, untouched
cases are unchanged, and no incident was raised.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import pstats
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from bench._seed import CASE_PATTERN, SETTINGS, subject  # noqa: E402
from bench.harness import bulk_insert, stop_group  # noqa: E402
from bench.timers import Database  # noqa: E402
from service import create_app  # noqa: E402
from service.demo import _opening_actions, _shifted  # noqa: E402  (the demo's replay of a process test)
from service.persistence import make_engine, tables as t  # noqa: E402
from service.persistence.database import BEGIN_READ, SQLITE_BEGIN  # noqa: E402
from tests.integration.timer_fleet import answers, free_port, percentile, scheduler_started, wait_for  # noqa: E402
from workflows import accounts, handlers  # noqa: E402
from workflows.model import CaseStatus, TaskStatus, TimerStatus, User  # noqa: E402
from workflows.process_tests import load_process_test  # noqa: E402

BIN = Path(sys.executable).parent
# Every lane the seeded cases' first tasks are for; each client may complete any of them.
ROLES = ["case_manager", "clinical_liaison", "nurse_case_manager"]
HTTP_TIMEOUT = 60
SECRET_KEY = "bench-load-secret"
# A kept-alive connection idle this long is reopened before the next request: gunicorn closes idle ones after 2 s.
IDLE_RECONNECT = 1.0


@dataclass
class Item:
    """One completion a client sends: the task, its form data, and the barrier it shares when contested."""

    task_id: int
    case_id: int
    element_id: str
    data: dict
    barrier: threading.Barrier | None = None


@dataclass
class Result:
    client: str
    task_id: int
    contested: bool
    started: float
    ended: float
    status: int | None  # None: no answer (connection error or timeout)
    error: str = ""


@dataclass
class Script:
    """A setting's template cases and the completions of the tasks open at their start, in the test's order."""

    setting: str
    process_id: str
    templates: list[int]
    completions: dict[str, dict]  # element id -> form data, in order
    probe: int = 0


# ---------------------------------------------------------------- setting up


def casework(args: list[str], env: dict) -> str:
    """Run a `casework` command; stop the benchmark with its output if it fails."""
    done = subprocess.run([str(BIN / "casework"), *args], env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"casework {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def add_clients(services, count: int) -> dict[str, str]:
    """One API user per client; return username -> token."""
    return {f"client{n:02d}": accounts.add_user(services, username=f"client{n:02d}", roles=ROLES)[1]
            for n in range(1, count + 1)}


def start_scripts(services, *, per_setting: int, now: datetime) -> list[Script]:
    """Start `per_setting` real cases per setting and work out, then prove on one more, the completions to send."""
    actor = User("bench-starter", ROLES + ["supervisor"])
    numbers = iter(range(10**6))
    scripts = []
    for setting, path, name_field, ref_field, ref_format in SETTINGS:
        test = load_process_test(path, (REPO / "bpmn" / path).read_bytes())
        offset = now - test.start  # the case opens now; the test's later dates move with it
        data = _shifted(dict(test.data), offset)

        def start() -> int:
            n = next(numbers)
            return handlers.start_case(
                services, actor=actor, process_id=test.process, subject_name=subject(n),
                subject_ref=ref_format.format(n), data=data | {name_field: subject(n), ref_field: ref_format.format(n)}).id

        templates = [start() for _ in range(per_setting)]
        opened = {task.element_id for task in handlers.get_case(services, case_id=templates[0]).open_tasks}
        completions = {}
        for step in _opening_actions(test.steps):
            element = step.spec.get("complete")
            if step.kind == "complete" and element in opened and element not in completions:
                completions[element] = _shifted(dict(step.spec.get("data") or {}), offset)
        if set(completions) != opened:
            raise SystemExit(f"{path}: no completion data for {sorted(opened - set(completions))}")
        script = Script(setting, test.process, templates, completions, probe=start())
        for element, form in completions.items():  # the proof: every completion runs on a real case
            task = next(x for x in handlers.get_case(services, case_id=script.probe).open_tasks if x.element_id == element)
            handlers.complete_task(services, actor=actor, task_id=task.id, data=form)
        scripts.append(script)
    return scripts


def clone_cases(services, scripts: list[Script], *, tasks: int) -> None:
    """Copy the template cases (state, open tasks, pending timers, message waits) until there are `tasks` open tasks."""
    with services.uow() as uow:
        connection = uow.connection
        template_ids = [case_id for script in scripts for case_id in script.templates]

        def rows_of(table, **equal) -> dict[int, list[dict]]:
            found: dict[int, list[dict]] = defaultdict(list)
            statement = select(table).where(table.c.case_id.in_(template_ids)).filter_by(**equal).order_by(table.c.id)
            for row in connection.execute(statement):
                found[row.case_id].append({k: v for k, v in row._asdict().items() if k != "id"})
            return found

        cases = {row.id: row._asdict() for row in connection.execute(
            select(t.case_record).where(t.case_record.c.id.in_(template_ids)))}
        open_tasks = rows_of(t.human_task, status=TaskStatus.OPEN.value)
        timers = rows_of(t.timer, status=TimerStatus.PENDING.value)
        waits = rows_of(t.message_wait)
        next_id = connection.execute(select(t.case_record.c.id).order_by(t.case_record.c.id.desc()).limit(1)).scalar() + 1
        # Cases by setting share: per 4 cases, 2 acute (3 tasks each) and 1 each of the others (1 task).
        deal = [script for setting in CASE_PATTERN for script in scripts if script.setting == setting]
        new = {t.case_record: [], t.human_task: [], t.timer: [], t.message_wait: []}
        have = sum(len(open_tasks[c]) for c in template_ids)
        n = 0
        while have < tasks:
            script = deal[n % len(deal)]
            template = script.templates[(n // len(deal)) % len(script.templates)]
            case_id, number = next_id + n, 1000 + n
            ref = next(fmt for name, *_, fmt in SETTINGS if name == script.setting).format(number)
            new[t.case_record].append(cases[template] | {"id": case_id, "subject_name": subject(number),
                                                         "subject_ref": ref})
            for table, rows in ((t.human_task, open_tasks), (t.timer, timers), (t.message_wait, waits)):
                new[table] += [row | {"case_id": case_id} for row in rows[template]]
            have += len(open_tasks[template])
            n += 1
        for table, rows in new.items():
            bulk_insert(connection, table, rows)
        uow.commit()
    if services.uow.engine.dialect.name == "postgresql":
        with services.uow() as uow:  # a live database has planner statistics; a bulk load has none until autovacuum
            uow.connection.exec_driver_sql("ANALYZE case_record, human_task, timer, message_wait, case_event")
            uow.commit()


@dataclass
class Work:
    """What the clients complete: a shared queue of cases, and each pair of clients' contested cases."""

    queue: deque  # of cases, each a list of Items in the order to complete them; any client takes the next
    contested: dict[str, list[list[Item]]]  # client -> the cases it completes with its partner, in order
    every: int  # a paired client completes one contested case after every this many cases of the queue

    def size(self) -> int:
        return sum(map(len, self.queue)) + sum(len(case) for cases in self.contested.values() for case in cases) // 2


def deal_work(services, scripts: list[Script], clients: list[str], *, contested: float) -> Work:
    """Queue the seeded cases' open tasks; set a `contested` share of cases aside for pairs of clients."""
    data_of = {script.process_id: script.completions for script in scripts}
    probes = {script.probe for script in scripts}
    order = {(s.process_id, element): n for s in scripts for n, element in enumerate(s.completions)}
    with services.uow(read_only=True) as uow:
        rows = uow.connection.execute(
            select(t.human_task.c.id, t.human_task.c.case_id, t.human_task.c.element_id, t.case_record.c.process_id)
            .join(t.case_record, t.case_record.c.id == t.human_task.c.case_id)
            .where(t.human_task.c.status == TaskStatus.OPEN.value)).all()
    by_case: dict[int, list] = defaultdict(list)
    for row in rows:
        if row.case_id not in probes:
            by_case[row.case_id].append(row)
    chance = random.Random(7)
    case_ids = sorted(by_case)
    chance.shuffle(case_ids)
    pairs = [(clients[n], clients[n + 1]) for n in range(0, len(clients) - 1, 2)] if contested > 0 else []
    work = Work(deque(), {client: [] for client in clients}, every=max(1, round((1 / contested - 1) / 2)) if pairs else 0)
    for n, case_id in enumerate(case_ids):
        tasks = sorted(by_case[case_id], key=lambda r: order[(r.process_id, r.element_id)])
        items = [Item(r.id, case_id, r.element_id, data_of[r.process_id][r.element_id]) for r in tasks]
        if pairs and chance.random() < contested:
            # Both clients of a pair get the case's tasks in the same order, each task with one barrier for the two.
            barriers = [threading.Barrier(2) for _ in items]
            for client in pairs[n % len(pairs)]:
                work.contested[client].append([Item(i.task_id, i.case_id, i.element_id, i.data, barrier)
                                               for i, barrier in zip(items, barriers)])
        else:
            work.queue.append(items)
    return work


# ---------------------------------------------------------------- the clients


class Client(threading.Thread):
    """One person's script: complete the next task, again and again, timing each request.

    The next task is the next of the case in hand; then the next case of the shared queue, or
    after every `work.every` cases, the next case shared with the partner client.
    """

    def __init__(self, name: str, token: str, port: int, work: Work, *, stop_at: float, think: float):
        super().__init__(name=name, daemon=True)
        self.token, self.port, self.work, self.stop_at, self.think = token, port, work, stop_at, think
        self.results: list[Result] = []
        self.ran_out_at: float | None = None
        self.partner_wait = 0.0

    def cases(self):
        contested = iter(self.work.contested[self.name])
        done = 0
        while True:
            if self.work.every and done and done % self.work.every == 0:
                shared = next(contested, None)
                if shared is not None:
                    yield shared
            try:
                yield self.work.queue.popleft()
            except IndexError:
                return
            done += 1

    def run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        last_answer = time.monotonic()
        try:
            for item in (item for case in self.cases() for item in case):
                if time.monotonic() >= self.stop_at:
                    return
                if item.barrier is not None:
                    waited = time.monotonic()
                    try:  # both clients send together; neither sends if the other has stopped
                        item.barrier.wait(timeout=max(0.05, self.stop_at - time.monotonic() + 1))
                    except threading.BrokenBarrierError:
                        return
                    finally:
                        self.partner_wait += time.monotonic() - waited
                body = json.dumps({"data": item.data})
                if time.monotonic() - last_answer > IDLE_RECONNECT:
                    connection.close()  # the server may be closing it as idle: never send a completion into that
                started = time.monotonic()
                status, error = self._post(connection, f"/api/v1/tasks/{item.task_id}/complete", body, headers)
                last_answer = time.monotonic()
                self.results.append(Result(self.name, item.task_id, item.barrier is not None, started,
                                           last_answer, status, error))
                if self.think:
                    time.sleep(self.think)
            self.ran_out_at = time.monotonic()
        finally:
            connection.close()
            for case in self.work.contested[self.name]:  # a partner waiting for this client waits no more
                for item in case:
                    if item.barrier.n_waiting:
                        item.barrier.abort()

    @staticmethod
    def _post(connection, path: str, body: str, headers: dict) -> tuple[int | None, str]:
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read()
            if response.will_close:
                connection.close()  # the next request opens a new connection
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            return None, f"{type(error).__name__}: {error}"
        return response.status, "" if response.status < 300 else text[:300].decode(errors="replace")


# ---------------------------------------------------------------- the servers


class Server:
    """A process in a group of its own (gunicorn and its workers, or `casework worker`), its output in a log."""

    def __init__(self, name: str, command: list[str], env: dict, log: Path):
        self.name, self.log = name, log
        with log.open("w") as handle:
            self.popen = subprocess.Popen(command, env=env, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def children(self) -> list[int]:
        try:
            return [int(pid) for pid in Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children").read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        stop_group(self.popen, ((signal.SIGTERM, 40), (signal.SIGKILL, 10)))


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds each process has used so far (processes gone are left out)."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine (other sessions' backends too)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "postgres":
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def cpu_snapshot(watched: dict[str, list[int]]) -> dict[str, dict]:
    """CPU seconds used so far by each process of each group, by this process (the clients), and by the machine."""
    snapshot = {name: cpu_seconds(pids) for name, pids in watched.items()}
    snapshot["clients"] = {0: time.process_time()}
    jiffies = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    snapshot["machine"] = {0: (sum(jiffies) - jiffies[3] - jiffies[4]) / os.sysconf("SC_CLK_TCK")}
    return snapshot


def cpu_used(before: dict[str, dict], after: dict[str, dict]) -> dict[str, float]:
    """CPU seconds each group used between two snapshots, over the processes alive at both."""
    return {name: sum(after[name][pid] - used for pid, used in before[name].items() if pid in after[name])
            for name in before}


PROFILE_HOOKS = """\
import cProfile, os

def post_worker_init(worker):
    worker.bench_profile = cProfile.Profile()
    worker.bench_profile.enable()

def worker_exit(server, worker):
    profile = getattr(worker, "bench_profile", None)
    if profile is not None:
        profile.disable()
        profile.dump_stats(os.path.join({folder!r}, "profile-%d.pstats" % os.getpid()))
"""


def gunicorn_command(args, port: int, folder: Path) -> list[str]:
    command = [str(BIN / "gunicorn"), "--workers", str(args.workers), "--bind", f"127.0.0.1:{port}",
               "--backlog", "2048"]
    if args.threads > 1:
        command += ["--worker-class", "gthread", "--threads", str(args.threads)]
    if args.profile:
        hooks = folder / "gunicorn_profile.py"
        hooks.write_text(PROFILE_HOOKS.format(folder=str(folder)))
        command += ["--config", str(hooks)]
    return command + shlex.split(args.gunicorn_args) + ["service:create_app()"]


# ---------------------------------------------------------------- the check


def verify(services, results: list[Result], seeded_versions: dict[int, int]) -> tuple[dict, list[str]]:
    """Compare every answer with the database; return the counts and the problems found."""
    engine = make_engine(services.uow.engine.url).execution_options(**{SQLITE_BEGIN: BEGIN_READ})
    try:
        with engine.connect() as connection:
            tasks = {row.id: row for row in connection.execute(
                select(t.human_task.c.id, t.human_task.c.case_id, t.human_task.c.status, t.human_task.c.completed_by))}
            events = defaultdict(list)
            for row in connection.execute(select(t.case_event.c.actor, t.case_event.c.payload)
                                          .where(t.case_event.c.kind == "task_completed")):
                events[row.payload.get("task_id")].append(row.actor)
            versions = dict(connection.execute(select(t.case_record.c.id, t.case_record.c.version)).all())
            incidents = connection.execute(select(t.incident.c.case_id, t.incident.c.message)).all()
    finally:
        engine.dispose()
    problems: list[str] = []
    counts = Counter()
    by_task: dict[int, list[Result]] = defaultdict(list)
    for result in results:
        by_task[result.task_id].append(result)
    for task_id, answers in by_task.items():
        row, recorded = tasks[task_id], events.get(task_id, [])
        winners = [r for r in answers if r.status == 200]
        if len(recorded) > 1:
            counts["duplicated"] += len(recorded) - 1
            problems.append(f"task {task_id}: {len(recorded)} task_completed events ({recorded})")
        for r in winners:
            if row.status != TaskStatus.COMPLETED.value or row.completed_by != r.client or recorded.count(r.client) != 1:
                counts["lost"] += 1
                problems.append(f"task {task_id}: 200 to {r.client}, but the row is {row.status} by "
                                f"{row.completed_by} with completion events by {recorded}")
        if len(winners) > 1:
            counts["duplicated"] += len(winners) - 1
            problems.append(f"task {task_id}: {len(winners)} clients got 200")
        if not winners and recorded and all(r.status is not None for r in answers):
            counts["completed without a 200"] += 1
            problems.append(f"task {task_id}: completed by {recorded} though every request was refused "
                            f"({[r.status for r in answers]})")
        if any(r.contested for r in answers):
            statuses = sorted(r.status or 0 for r in answers)
            counts["contested pairs"] += 1
            if statuses == [200, 409]:
                counts["contested, one winner"] += 1
            else:
                problems.append(f"contested task {task_id}: answers {statuses}")
    touched = {tasks[task_id].case_id for task_id in by_task}
    for case_id, version in seeded_versions.items():
        if case_id not in touched and versions.get(case_id) != version:
            problems.append(f"case {case_id}: no client touched it, yet its version moved {version} -> {versions.get(case_id)}")
    problems += check_cases(services, sorted(touched))
    problems += [f"case {case_id}: incident: {message}" for case_id, message in incidents]
    counts["cases checked in the engine"] = len(touched)
    return counts, problems


def check_cases(services, case_ids: list[int]) -> list[str]:
    """Each case's stored state loads, and its open task rows and pending timer rows say what the engine says."""
    problems = []
    for start in range(0, len(case_ids), 500):
        chunk = case_ids[start:start + 500]
        with services.uow(read_only=True) as uow:
            connection = uow.connection
            cases = connection.execute(select(t.case_record).where(t.case_record.c.id.in_(chunk))).all()
            open_rows, pending = defaultdict(set), defaultdict(set)
            for row in connection.execute(select(t.human_task.c.case_id, t.human_task.c.task_ref).where(
                    t.human_task.c.case_id.in_(chunk), t.human_task.c.status.in_(["open", "claimed"]))):
                open_rows[row.case_id].add(row.task_ref)
            for row in connection.execute(select(t.timer.c.case_id, t.timer.c.task_ref, t.timer.c.due_at).where(
                    t.timer.c.case_id.in_(chunk), t.timer.c.status == TimerStatus.PENDING.value)):
                pending[row.case_id].add((row.task_ref, row.due_at))
            for case in cases:
                try:
                    run = services.engine.resume(services.bundles.get(uow, case.process_version_id), case.state)
                except Exception as error:
                    problems.append(f"case {case.id}: its stored state does not load: {type(error).__name__}: {error}")
                    continue
                ready = {task.task_ref for task in run.ready_tasks()}
                if open_rows[case.id] != ready:
                    problems.append(f"case {case.id}: open task rows {sorted(open_rows[case.id])}, engine ready {sorted(ready)}")
                waiting = {(timer.task_ref, timer.due_at) for timer in run.waiting_timers()}
                if pending[case.id] != waiting:
                    problems.append(f"case {case.id}: pending timer rows {sorted(pending[case.id])}, engine {sorted(waiting)}")
                if case.status != CaseStatus.ACTIVE.value:
                    problems.append(f"case {case.id}: status {case.status}")
    return problems


# ---------------------------------------------------------------- the run


def measure(args, folder: Path) -> dict:
    database = Database(args.db, folder)
    env = dict(os.environ, CASEWORK_DATABASE_URL=database.url, CASEWORK_SECRET_KEY=SECRET_KEY,
               CASEWORK_SCHEDULER="0", PYTHONUNBUFFERED="1")
    servers: list[Server] = []
    app = None
    try:
        started = time.monotonic()
        casework(["db", "upgrade"], env)
        casework(["deploy", str(REPO / "bpmn")], env)
        app = create_app({"DATABASE_URL": database.url, "SECRET_KEY": SECRET_KEY, "SCHEDULER_ENABLED": False})
        services = app.extensions["casework"]
        tokens = add_clients(services, args.clients)
        scripts = start_scripts(services, per_setting=args.real_cases, now=services.clock.now())
        tasks = args.tasks or int(args.expect_rate * (args.seconds + args.warmup)) + 1000
        clone_cases(services, scripts, tasks=tasks)
        work = deal_work(services, scripts, sorted(tokens), contested=args.contested)
        with services.uow(read_only=True) as uow:
            seeded_versions = dict(uow.connection.execute(select(t.case_record.c.id, t.case_record.c.version)).all())
        print(f"# seeded {len(seeded_versions)} cases, {work.size():,} tasks for the clients "
              f"({sum(len(c) for cases in work.contested.values() for c in cases) // 2} of them contested) "
              f"in {time.monotonic() - started:.0f} s", flush=True)

        port = free_port()
        web = Server("gunicorn", gunicorn_command(args, port, folder), env, folder / "gunicorn.log")
        servers.append(web)
        if args.timer_worker:
            servers.append(Server("worker", [str(BIN / "casework"), "worker"], env, folder / "worker.log"))
        wait_for(lambda: answers(port, "/api/v1/openapi.json"), timeout=60, what="gunicorn to serve")
        for server in servers[1:]:
            wait_for(lambda: scheduler_started(server), timeout=60, what="the worker's scheduler")
        time.sleep(1)
        web_pids = web.children()
        load_before = os.getloadavg()

        begin = time.monotonic()
        window = (begin + args.warmup, begin + args.warmup + args.seconds)
        clients = [Client(name, tokens[name], port, work, stop_at=window[1], think=args.think_ms / 1000)
                   for name in sorted(tokens)]
        for client in clients:
            client.start()
        time.sleep(max(0.0, window[0] - time.monotonic()))
        watched = {"web": web_pids, "worker": [s.popen.pid for s in servers[1:]], "postgres": postgres_pids()}
        cpu_at_window = cpu_snapshot(watched)
        time.sleep(max(0.0, window[1] - time.monotonic()))
        cpu_end = cpu_snapshot(watched)
        for client in clients:
            client.join(timeout=HTTP_TIMEOUT + 10)
        ran_out = [c.ran_out_at for c in clients if c.ran_out_at is not None and c.ran_out_at < window[1]]
        for server in servers:
            server.stop()
        servers = []

        results = [result for client in clients for result in client.results]
        steady = [r for r in results if window[0] <= r.ended < window[1]]
        end = min([window[1], *ran_out])
        completions = sum(1 for r in steady if r.status == 200 and r.ended < end)
        latencies = sorted((r.ended - r.started) * 1000 for r in steady)
        plain = sorted((r.ended - r.started) * 1000 for r in steady if not r.contested)
        counts, problems = verify(services, results, seeded_versions)
        window_cpu = cpu_used(cpu_at_window, cpu_end)
        return {
            "db": args.db, "workers": args.workers, "threads": args.threads, "clients": args.clients,
            "seconds": end - window[0], "completions": completions, "per_second": completions / (end - window[0]),
            "requests": len(steady), "p50": percentile(latencies, 0.5), "p95": percentile(latencies, 0.95),
            "p99": percentile(latencies, 0.99), "max": latencies[-1] if latencies else float("nan"),
            "p99_plain": percentile(plain, 0.99),
            "non_2xx": Counter(("no answer" if r.status is None else r.status) for r in steady
                               if r.status is None or r.status >= 300),
            "non_2xx_all": Counter(("no answer" if r.status is None else r.status) for r in results
                                   if r.status is None or r.status >= 300),
            "errors": Counter(r.error[:160] for r in results if r.status != 200 and not (r.contested and r.status == 409)),
            "all_requests": len(results), "counts": counts, "problems": problems, "ran_out": len(ran_out),
            "partner_wait": sum(c.partner_wait for c in clients), "cpu": window_cpu, "load": load_before,
            "window": args.seconds, "window_completions": sum(1 for r in steady if r.status == 200),
            "profiles": sorted(folder.glob("profile-*.pstats")),
        }
    finally:
        for server in servers:
            server.stop()
        if app is not None:
            app.extensions["casework"].uow.dispose()
        if not args.keep:
            database.drop()
        else:
            print(f"# kept the database: {database.url}")


def print_profile(paths: list[Path], lines: int) -> None:
    stats = pstats.Stats(*map(str, paths))
    stats.strip_dirs()
    print(f"\n# cProfile of the gunicorn worker(s), {len(paths)} file(s): top {lines} by cumulative time")
    stats.sort_stats("cumulative").print_stats(lines)
    print(f"# top {lines} by own time")
    stats.sort_stats("tottime").print_stats(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=30, help="the measured window, after the warm-up")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before the window opens")
    parser.add_argument("--workers", type=int, default=3,
                        help="gunicorn worker processes (3: the best of 1-6 on the 2-core machine of BENCHMARKS.md)")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (>1: gthread workers)")
    parser.add_argument("--contested", type=float, default=0.05, help="share of cases whose tasks two clients complete at once")
    parser.add_argument("--think-ms", type=float, default=0, help="pause of each client between its requests")
    parser.add_argument("--tasks", type=int, default=0, help="open tasks to seed (default: --expect-rate x run time + 1000)")
    parser.add_argument("--expect-rate", type=float, default=250, help="completions/s to seed for when --tasks is 0")
    parser.add_argument("--real-cases", type=int, default=10, help="real cases started per setting, then cloned")
    parser.add_argument("--gunicorn-args", default="", help="more gunicorn options, e.g. \"--keep-alive 5\"")
    parser.add_argument("--no-timer-worker", dest="timer_worker", action="store_false",
                        help="do not run a `casework worker` beside gunicorn")
    parser.add_argument("--profile", action="store_true", help="run each gunicorn worker under cProfile and print the top")
    parser.add_argument("--profile-lines", type=int, default=25)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards (prints its URL)")
    args = parser.parse_args()

    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"# server: gunicorn {args.workers} {'gthread x' + str(args.threads) if args.threads > 1 else 'sync'} "
          f"worker(s){' + 1 casework worker' if args.timer_worker else ''}, {args.db}"
          f"{' (under cProfile: slower)' if args.profile else ''}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        r = measure(args, Path(folder))
        if args.profile and r["profiles"]:
            print_profile(r["profiles"], args.profile_lines)
    counts = r["counts"]
    non_2xx = ", ".join(f"{status}: {n}" for status, n in sorted(r["non_2xx"].items(), key=str)) or "none"
    print(f"\n| db | workers | clients | seconds | completions | completions/s | p50 ms | p95 ms | p99 ms "
          f"| non-2xx by status | lost | duplicated |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|")
    workers = f"{r['workers']}" + (f" x {r['threads']} threads" if r["threads"] > 1 else "")
    print(f"| {r['db']} | {workers} | {r['clients']} | {r['seconds']:.1f} | {r['completions']:,} "
          f"| {r['per_second']:.0f} | {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | {non_2xx} "
          f"| {counts['lost']} | {counts['duplicated']} |")
    print(f"\n# window: {r['requests']:,} completion requests, max {r['max']:.0f} ms, p99 without the contested "
          f"{r['p99_plain']:.0f} ms; whole run: {r['all_requests']:,} requests, non-2xx "
          f"{dict(r['non_2xx_all'])}")
    print(f"# contested pairs: {counts['contested pairs']}, with exactly one 200 and one 409: "
          f"{counts['contested, one winner']}; completed without a 200: {counts['completed without a 200']}; "
          f"cases checked in the engine: {counts['cases checked in the engine']}")
    cpu = {name: used / r["window"] for name, used in r["cpu"].items()}
    per = {name: 1000 * used / max(1, r["window_completions"]) for name, used in r["cpu"].items()}
    postgres = r["db"] == "postgresql"
    print(f"# cores busy in the window (of {os.cpu_count()}): gunicorn workers {cpu['web']:.2f}, "
          + (f"postgres (all its processes) {cpu['postgres']:.2f}, " if postgres else "")
          + f"casework worker {cpu['worker']:.2f}, clients {cpu['clients']:.2f}, whole machine {cpu['machine']:.2f}; "
          f"CPU per completion: gunicorn {per['web']:.1f} ms" + (f", postgres {per['postgres']:.1f} ms" if postgres else ""))
    others = cpu["machine"] - cpu["web"] - cpu["worker"] - cpu["clients"] - (cpu["postgres"] if postgres else 0)
    print(f"# other processes used {others:.2f} cores in the window (the machine was this run's alone only if near 0); "
          f"load average before the run {r['load'][0]:.2f}; clients waited {r['partner_wait']:.1f} s in all "
          f"for a contested partner")
    if r["ran_out"]:
        print(f"# {r['ran_out']} client(s) ran out of tasks before the window ended: the window was cut; seed more (--tasks)")
    for error, n in r["errors"].most_common(5):
        print(f"# refused ({n}): {error}")
    if r["problems"]:
        print(f"# {len(r['problems'])} PROBLEM(S):")
        for problem in r["problems"][:30]:
            print(f"#   {problem}")
    else:
        print("# database check: every 200 recorded once, nothing completed twice or without a 200, "
              "every contested pair one winner, every touched case consistent with its engine state")
    met = r["per_second"] >= 150 and r["p99"] < 250 and counts["lost"] == 0 and counts["duplicated"] == 0
    print(f"# target: >= 150 completions/s, p99 < 250 ms, 0 lost, 0 duplicated: {'met' if met else 'not met'} "
          f"({r['per_second']:.0f}/s, p99 {r['p99']:.0f} ms)")
    sys.exit(1 if r["problems"] else 0)


if __name__ == "__main__":
    main()
