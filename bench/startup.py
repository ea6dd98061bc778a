"""Start-up: wall time from spawning `casework run` to its first successful HTTP response.

    .venv/bin/python bench/startup.py                          # SQLite and PostgreSQL, 3 runs each
    .venv/bin/python bench/startup.py --db postgresql --repeat 5

Each run spawns the installed `casework run --port <free port>` (default settings: the
timer scheduler on, the repository's bpmn/ folder) as a real process in its own process
group, polls GET /signin (the app has no health route; the sign-in page needs no
session and touches no case data) every 20 ms, and stops the clock at the first 200.
The server is then interrupted (SIGINT, then SIGTERM, then SIGKILL to its group).

Scenarios, each on a fresh SQLite file or a fresh PostgreSQL schema:
  first    first start on an empty database: migrations, deploying bpmn/, serving;
  restart  a restart of that same database, the bundled diagrams already deployed
           (the common case, and the one the 3 s target is about);
  demo     `casework run --demo` on an empty database: migrations, deploying and the demo
           users and cases (for information).

Then, once per database, where a restart's time goes: the phases of `casework run` timed
in a fresh interpreter against the deployed database, and the packages that take the
longest to import (`python -X importtime`, self time summed per top-level package).
The secret key is passed as CASEWORK_SECRET_KEY, so nothing is written to the instance folder.
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.timers import Database  # noqa: E402  (a fresh SQLite file or PostgreSQL schema)
from tests.integration.timer_fleet import answers, free_port  # noqa: E402
from bench.harness import stop_group  # noqa: E402

TARGET_SECONDS = 3.0
CASEWORK = Path(sys.executable).with_name("casework")
PYTHON = Path(sys.executable)
SCENARIOS = ("first", "restart", "demo")


def environment(database_url: str) -> dict[str, str]:
    return dict(os.environ, CASEWORK_DATABASE_URL=database_url, CASEWORK_SECRET_KEY="bench-startup-secret",
                CASEWORK_BPMN_PATH=str(REPO / "bpmn"), PYTHONUNBUFFERED="1")


def stop(popen: subprocess.Popen) -> None:
    """Interrupt the server's process group; escalate if it does not exit."""
    stop_group(popen, ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 10)))


def time_to_first_response(database_url: str, workdir: Path, *, demo: bool = False, timeout: float = 180) -> float:
    """Seconds from spawning `casework run` to the first 200 from GET /signin."""
    port = free_port()
    log = workdir / f"run-{port}.log"
    args = [str(CASEWORK), "run", "--port", str(port), *(["--demo"] if demo else [])]
    with log.open("w") as handle:
        began = time.perf_counter()
        popen = subprocess.Popen(args, cwd=workdir, env=environment(database_url), stdout=handle,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        while True:
            if answers(port, "/signin", timeout=5):
                return time.perf_counter() - began
            if popen.poll() is not None:
                raise SystemExit(f"casework run exited with {popen.returncode}:\n{log.read_text()[-3000:]}")
            if time.perf_counter() - began > timeout:
                raise SystemExit(f"casework run did not answer within {timeout} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.02)
    finally:
        stop(popen)


def measure(kind: str, repeat: int, workdir: Path, kept: dict[str, Database]) -> dict[str, list[float]]:
    """Times per scenario; the first database stays deployed in `kept[kind]`, for the breakdown."""
    times: dict[str, list[float]] = defaultdict(list)
    for n in range(repeat):
        database = Database(kind, workdir)
        try:
            times["first"].append(time_to_first_response(database.url, workdir))
            times["restart"].append(time_to_first_response(database.url, workdir))
        finally:
            if kind not in kept:
                kept[kind] = database
            else:
                database.drop()
        database = Database(kind, workdir)
        try:
            times["demo"].append(time_to_first_response(database.url, workdir, demo=True))
        finally:
            database.drop()
        print(f"  {kind} run {n + 1}/{repeat}: " + ", ".join(f"{s} {times[s][-1]:.2f} s" for s in SCENARIOS),
              file=sys.stderr, flush=True)
    return times


# The phases of `casework run` up to serving, in a fresh interpreter (what `run` does, in order).
PHASES = textwrap.dedent("""
    import time
    began = time.perf_counter()
    marks = []
    def mark(name):
        marks.append((name, time.perf_counter()))
    from pathlib import Path
    from service import cli
    from service import demo
    from service import jobs
    mark("import service.cli, .demo, .jobs")
    from service.persistence import upgrade_database
    from service.config import from_environment
    upgrade_database(from_environment()["DATABASE_URL"])
    mark("upgrade_database (at head)")
    app = cli._app(AUTO_MIGRATE=False)
    mark("create_app (rest)")
    deployed = cli.deploy_folder(app, Path(app.config["BPMN_PATH"]), only_new=True)
    mark(f"deploy bpmn/ only_new ({len(deployed)} processes, unchanged)")
    import apscheduler.schedulers.background
    import werkzeug.serving
    mark("import apscheduler, werkzeug.serving")
    assert app.test_client().get("/signin").status_code == 200
    mark("first GET /signin (test client: templates compiled)")
    last = began
    for name, at in marks:
        print(f"{at - last:8.3f}  {name}")
        last = at
    print(f"{last - began:8.3f}  total before app.run")
""")


def breakdown(database: Database, workdir: Path) -> None:
    print(f"\nWhere a restart's time goes ({database.kind}; phases in a fresh interpreter, seconds):")
    env = environment(database.url)
    began = time.perf_counter()
    subprocess.run([str(PYTHON), "-c", "pass"], cwd=workdir, env=env, check=True)
    print(f"{time.perf_counter() - began:8.3f}  interpreter start and exit (python -c pass)")
    phases = subprocess.run([str(PYTHON), "-c", PHASES], cwd=workdir, env=env, capture_output=True, text=True)
    if phases.returncode:
        print(phases.stderr[-3000:])
        return
    print(phases.stdout.rstrip())
    imports = subprocess.run([str(PYTHON), "-X", "importtime", "-c",
                              "import service.cli, service.demo, service.jobs, werkzeug.serving"],
                             cwd=workdir, env=env, capture_output=True, text=True)
    by_package: dict[str, int] = defaultdict(int)
    for line in imports.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        by_package[name.strip().split(".")[0]] += int(self_us)
    total = sum(by_package.values())
    top = sorted(by_package.items(), key=lambda item: -item[1])[:10]
    print(f"Imports of `casework run` (python -X importtime, self time per top-level package): {total / 1e6:.2f} s in all")
    print("  " + ", ".join(f"{name} {us / 1e3:.0f} ms" for name, us in top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (default 3)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the where-the-time-goes section")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]

    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"# command: {' '.join([PYTHON.name, *sys.argv])}", flush=True)
    results, kept = {}, {}
    with tempfile.TemporaryDirectory(prefix="casework-startup-") as folder:
        workdir = Path(folder)
        try:
            for kind in kinds:
                results[kind] = measure(kind, args.repeat, workdir, kept)
            print(f"\nSeconds from spawning `casework run` to the first 200 (GET /signin), {args.repeat} runs each; "
                  f"target {TARGET_SECONDS:g} s for restart")
            print(f"| {'db':<10} | {'scenario':<8} | {'median s':>8} | {'max s':>6} | {'target':<16} |")
            print(f"|{'-' * 12}|{'-' * 10}|{'-' * 9}:|{'-' * 7}:|{'-' * 18}|")
            for kind in kinds:
                for scenario in SCENARIOS:
                    values = results[kind][scenario]
                    median, worst = statistics.median(values), max(values)
                    verdict = ""
                    if scenario == "restart":
                        verdict = "met" if worst <= TARGET_SECONDS else f"missed by {worst - TARGET_SECONDS:.2f} s"
                    print(f"| {kind:<10} | {scenario:<8} | {median:>8.2f} | {worst:>6.2f} | {verdict:<16} |")
            if not args.no_breakdown:
                for kind in kinds:
                    breakdown(kept[kind], workdir)
        finally:
            for database in kept.values():
                database.drop()


if __name__ == "__main__":
    main()
