"""Timer throughput and lateness: real `casework worker` processes firing seeded timers.

    .venv/bin/python bench/timers.py                      # SQLite and PostgreSQL, 1 and 2 workers
    .venv/bin/python bench/timers.py --db postgresql --timers 10000 --workers 1

Throughput: N timers all due at one instant (after the workers are up); timers fired
per second from that instant until the last one fired. Lateness: timers due one by one
at a rate the workers can keep up with (not saturated), with the default 5 s poll;
seconds from each timer's due time to its firing. Double fires and missed timers are
counted from the case events (both must be 0).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.timer_fleet import (  # noqa: E402
    TimerLedger,
    in_the_future,
    lateness,
    percentile,
    scheduler_started,
    seed_timers,
    start,
    wait_for,
)

POSTGRES = os.environ.get("CASEWORK_BENCH_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/test")


class Database:
    """A fresh SQLite file or PostgreSQL schema for one measurement."""

    def __init__(self, kind: str, folder: Path):
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{folder / f'timers-{uuid.uuid4().hex[:8]}.db'}"
            self.schema = None
        else:
            import psycopg

            self.schema = f"bench_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(POSTGRES.replace("+psycopg", ""), autocommit=True) as admin:
                admin.execute(f"CREATE SCHEMA {self.schema}")
            self.url = f"{POSTGRES}?options=-csearch_path%3D{self.schema}"

    def drop(self) -> None:
        if self.schema:
            import psycopg

            with psycopg.connect(POSTGRES.replace("+psycopg", ""), autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {self.schema} CASCADE")


def run_workers(database: Database, workdir: Path, workers: int, **settings):
    processes = [start(f"worker-{n + 1}", ["worker"], database_url=database.url, workdir=workdir, **settings)
                 for n in range(workers)]
    for process in processes:
        wait_for(lambda: scheduler_started(process), timeout=60, what=f"{process.name} to start", processes=processes)
    return processes


def throughput(kind: str, workers: int, timers: int, workdir: Path) -> dict:
    database = Database(kind, workdir)
    processes = []
    try:
        lead = 20.0  # seconds for the workers to start before the timers fall due
        due_at = in_the_future(lead)
        case_ids = seed_timers(database.url, count=timers, due_at=due_at)
        ledger = TimerLedger(database.url)
        processes = run_workers(database, workdir, workers, timer_poll_seconds=5, scan_seconds=3600)
        if ledger.pending() != timers:
            raise SystemExit("The workers started after the timers fell due: raise the lead time.")
        wait_for(lambda: ledger.pending() == 0, timeout=900, interval=0.5, what="all timers to fire", processes=processes)
        time.sleep(1)
        events = ledger.fired_events()
        fires = ledger.fires_per_case(case_ids)
        last = max(event["at"] for event in events)
        seconds = (last - due_at).total_seconds()
        late = lateness(events)
        ledger.close()
        return {"db": kind, "workers": workers, "timers": timers, "seconds": seconds,
                "per_second": timers / seconds, "p50": percentile(late, 0.5), "p99": percentile(late, 0.99),
                "double": sum(n for count, n in fires.items() if count > 1), "missed": fires.get(0, 0)}
    finally:
        for process in processes:
            process.stop()
        database.drop()


def steady_lateness(kind: str, workers: int, timers: int, rate: float, workdir: Path) -> dict:
    database = Database(kind, workdir)
    processes = []
    try:
        first = in_the_future(20)
        due = [first + timedelta(seconds=n / rate) for n in range(timers)]
        case_ids = seed_timers(database.url, count=timers, due_at=due)
        ledger = TimerLedger(database.url)
        processes = run_workers(database, workdir, workers, timer_poll_seconds=5, scan_seconds=3600)
        wait_for(lambda: ledger.pending() == 0, timeout=900, interval=0.5, what="all timers to fire", processes=processes)
        time.sleep(1)
        events = ledger.fired_events()
        fires = ledger.fires_per_case(case_ids)
        late = lateness(events)
        ledger.close()
        return {"db": kind, "workers": workers, "timers": timers, "rate": rate, "p50": percentile(late, 0.5),
                "p99": percentile(late, 0.99), "max": late[-1], "double": sum(n for c, n in fires.items() if c > 1),
                "missed": fires.get(0, 0)}
    finally:
        for process in processes:
            process.stop()
        database.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--timers", type=int, default=10000, help="timers due at once (throughput)")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, e.g. 1,2")
    parser.add_argument("--steady-timers", type=int, default=1000, help="timers for the lateness run (0 to skip)")
    parser.add_argument("--steady-rate", type=float, default=50.0, help="timers falling due per second in the lateness run")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    counts = [int(n) for n in args.workers.split(",")]

    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        print("\nThroughput: timers all due at once")
        print(f"{'db':<11}{'workers':>8}{'timers':>8}{'seconds':>9}{'fired/s':>9}{'p50 late':>10}{'p99 late':>10}{'double':>8}{'missed':>8}")
        for kind in kinds:
            for workers in counts:
                r = throughput(kind, workers, args.timers, workdir)
                print(f"{r['db']:<11}{r['workers']:>8}{r['timers']:>8}{r['seconds']:>9.1f}{r['per_second']:>9.0f}"
                      f"{r['p50']:>10.2f}{r['p99']:>10.2f}{r['double']:>8}{r['missed']:>8}", flush=True)
        if args.steady_timers:
            print(f"\nLateness, not saturated: {args.steady_timers} timers due at {args.steady_rate:g}/s, poll every 5 s")
            print(f"{'db':<11}{'workers':>8}{'timers':>8}{'p50 s':>8}{'p99 s':>8}{'max s':>8}{'double':>8}{'missed':>8}")
            for kind in kinds:
                r = steady_lateness(kind, 1, args.steady_timers, args.steady_rate, workdir)
                print(f"{r['db']:<11}{r['workers']:>8}{r['timers']:>8}{r['p50']:>8.2f}{r['p99']:>8.2f}{r['max']:>8.2f}"
                      f"{r['double']:>8}{r['missed']:>8}", flush=True)


if __name__ == "__main__":
    main()
