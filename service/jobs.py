"""The scheduler: APScheduler only triggers the poll; the timer table is the source of truth."""
from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from workflows import handlers

log = logging.getLogger(__name__)
_started = threading.Lock()
_running: dict[str, object] = {}


def poll_timers(app) -> None:
    """Fire every due timer; one failing case never stops the others."""
    try:
        fired = handlers.fire_due_timers(app.extensions["casework"])
        if fired:
            log.info("Fired %d timer(s)", fired)
    except Exception:
        log.exception("Timer poll failed")


def _configure(scheduler, app) -> None:
    scheduler.add_job(
        poll_timers,
        "interval",
        args=[app],
        seconds=app.config["TIMER_POLL_SECONDS"],
        id="poll_timers",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(timezone.utc),
    )


def start_embedded_scheduler(app) -> BackgroundScheduler | None:
    """Start the timer poll in this web process, once, and never in a reloader's watcher process."""
    if os.environ.get("FLASK_RUN_FROM_CLI") and os.environ.get("WERKZEUG_RUN_MAIN") not in (None, "true"):
        return None
    with _started:
        if "scheduler" in _running:
            return _running["scheduler"]
        scheduler = BackgroundScheduler(timezone=timezone.utc)
        _configure(scheduler, app)
        scheduler.start()
        _running["scheduler"] = scheduler
    return scheduler


def run_worker(app) -> None:
    """Run the timer poll alone, in the foreground (`casework worker`)."""
    scheduler = BlockingScheduler(timezone=timezone.utc)
    _configure(scheduler, app)
    scheduler.start()
