"""The injected "now" that engine work runs at.

The facade sets it around every engine operation; timers and script helpers read it.
Nothing in `workflows/` reads the wall clock: the service passes the time in through
the Clock port, so a process test can run a 60-day stay in milliseconds.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

_current: ContextVar[datetime | None] = ContextVar("casework_now", default=None)


@contextmanager
def running_at(now: datetime) -> Iterator[datetime]:
    """Run the enclosed engine work as if the time were `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("The engine's time must be timezone-aware")
    token = _current.set(now)
    try:
        yield now
    finally:
        _current.reset(token)


def current_time() -> datetime:
    """Return the time the current engine work runs at."""
    now = _current.get()
    if now is None:
        raise RuntimeError("No engine time set: wrap engine work in clock.running_at(now)")
    return now
