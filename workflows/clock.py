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
_waiting_timers_fire: ContextVar[bool] = ContextVar("casework_waiting_timers_fire", default=True)


@contextmanager
def running_at(now: datetime, *, fire_waiting_timers: bool = True) -> Iterator[datetime]:
    """Run the enclosed engine work as if the time were `now` (timezone-aware).

    SpiffWorkflow looks at every waiting timer at the end of each engine run, so a person's
    action would fire the case's due timers in passing, unaudited and outside the timer
    table's lease; `fire_waiting_timers=False` keeps them waiting for the scheduler.
    """
    if now.tzinfo is None:
        raise ValueError("The engine's time must be timezone-aware")
    token = _current.set(now)
    firing = _waiting_timers_fire.set(fire_waiting_timers)
    try:
        yield now
    finally:
        _waiting_timers_fire.reset(firing)
        _current.reset(token)


def current_time() -> datetime:
    """Return the time the current engine work runs at."""
    now = _current.get()
    if now is None:
        raise RuntimeError("No engine time set: wrap engine work in clock.running_at(now)")
    return now


def waiting_timers_fire() -> bool:
    """Whether a timer that was already waiting may fire in the current engine work."""
    return _waiting_timers_fire.get()
