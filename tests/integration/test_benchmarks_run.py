"""The benchmarks of BENCHMARKS.md still run: each at a toy scale on SQLite, as `make bench` runs them.

Nothing here is timed. A benchmark that no longer runs against the current code (an import that
moved, a page that now wants a session) would otherwise be found only by the next `make bench`.
bench/timers.py is left out: the same fleet of real workers is tests/integration/test_scheduler_processes.py's.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

RUNS = {
    "startup": (["--db", "sqlite", "--repeat", "1", "--no-breakdown"], "| sqlite     | restart"),
    "overhead": (["--db", "sqlite", "--cases", "3", "--cycles", "2"], "| sqlite | HTTP API through gunicorn"),
    "growth": (["--db", "sqlite", "--cycles", "1,3", "--cases", "1", "--repeat", "1"], "| service, sqlite | 3 |"),
    "inbox": (["--db", "sqlite", "--cases", "300", "--repeat", "1", "--real-cases", "6"],
              "| sqlite | team, acute + due this week, by priority |"),
    "load": (["--db", "sqlite", "--workers", "1", "--clients", "2", "--seconds", "2", "--warmup", "1",
              "--real-cases", "1", "--tasks", "100"], "| sqlite | 1 | 2 |", "# database check: every 200 recorded once"),
    "stuck": (["--db", "sqlite", "--cases", "300", "--stuck", "30", "--repeat", "1", "--real-cases", "6"],
              "| sqlite | default: stuck longest |"),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_benchmark_runs_at_a_toy_scale(name, tmp_path):
    arguments, *expected = RUNS[name]
    done = subprocess.run([sys.executable, str(REPO / "bench" / f"{name}.py"), *arguments], cwd=tmp_path,
                          capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"bench/{name}.py exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    for line in expected:  # a row of its table, and what it checks
        assert line in done.stdout, done.stdout[-2000:]
