"""The scheduler: APScheduler only triggers the poll; the timer table is the source of truth.

Every `CASEWORK_TIMER_POLL_SECONDS` the poll claims due timers with a lease and fires
them (workflows/handlers/timers.py); beside it, a second job runs the stuck-case scan
when its interval has passed. Between polls it wakes early for a timer that falls due before the next
one, so a timer fires within a second of its time however long the poll interval.
Any number of schedulers (`casework run`, `casework worker`) may share a PostgreSQL
database: leases keep them from firing a timer twice.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from workflows.handlers.scan import run_stuck_scan
from workflows.handlers.timers import TimerPolicy, fire_due_timers
from workflows.log_safety import failure_outline

log = logging.getLogger(__name__)

# One scheduler per process, whatever starts it: keyed by pid, because a process
# forked from one that ran a scheduler (gunicorn --preload) inherits the record but
# not the thread.
_registry_lock = threading.Lock()
_running: dict[int, "TimerScheduler"] = {}

# How many upcoming timers an early wake-up looks at, and how soon at the earliest it comes.
WAKE_LOOKAHEAD = 20
MIN_WAKE_GAP = timedelta(milliseconds=250)


def timer_policy(config) -> TimerPolicy:
    """The timer settings of an app's configuration."""
    return TimerPolicy(
        lease=timedelta(seconds=config["TIMER_LEASE_SECONDS"]),
        batch_size=config["TIMER_BATCH_SIZE"],
        retry_delays=tuple(timedelta(minutes=m) for m in config["TIMER_RETRY_MINUTES"]),
        threads=config["TIMER_THREADS"] or (4 if str(config["DATABASE_URL"]).startswith("postgres") else 1),
    )


class TimerScheduler:
    """The poll of one process: fire due timers under this scheduler's own lease name."""

    def __init__(self, app, scheduler: BaseScheduler):
        self.app = app
        self.services = app.extensions["casework"]
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.policy = timer_policy(app.config)
        self.poll_interval = timedelta(seconds=app.config["TIMER_POLL_SECONDS"])
        self.scheduler = scheduler
        self._polling = threading.Lock()
        self._stopping = False
        scheduler.add_job(
            self.poll, "interval", seconds=self.poll_interval.total_seconds(), id="poll_timers",
            max_instances=1, coalesce=True, misfire_grace_time=None,
            # Overdue timers fire at start-up: the first poll runs at once.
            next_run_time=datetime.now(timezone.utc),
        )
        # The stuck-case scan keeps the same beat in a job of its own, so a long scan never
        # holds up a timer; the mark in the database spaces scans CASEWORK_SCAN_SECONDS apart.
        scheduler.add_job(
            self.scan, "interval", seconds=self.poll_interval.total_seconds(), id="stuck_scan",
            max_instances=1, coalesce=True, misfire_grace_time=None, next_run_time=datetime.now(timezone.utc),
        )

    def poll(self) -> int:
        """Fire every due timer, then plan an early wake-up for the next one."""
        if self._stopping or not self._polling.acquire(blocking=False):
            return 0  # stopping, or the interval poll and an early wake-up met; one is enough
        fired = 0
        try:
            try:
                fired = fire_due_timers(self.services, owner=self.owner, policy=self.policy)
                if fired:
                    log.info("Fired %d timer(s)", fired)
            except Exception as error:
                log.error("Firing due timers failed\n%s", failure_outline(error))
            try:
                self._wake_for_next_timer()
            except Exception as error:
                log.error("Planning the next wake-up failed\n%s", failure_outline(error))
        finally:
            self._polling.release()
        return fired

    def scan(self) -> None:
        """Run the stuck-case scan, if no scheduler has run it in the last CASEWORK_SCAN_SECONDS."""
        config = self.app.config
        try:
            result = run_stuck_scan(
                self.services, owner=self.owner, every=timedelta(seconds=config["SCAN_SECONDS"]),
                idle_days=config["IDLE_DAYS"], timer_grace=max(3 * self.poll_interval, self.policy.lease),
            )
        except Exception as error:
            log.error("The stuck-case scan failed\n%s", failure_outline(error))
            return
        if result is not None and (result.raised or result.cleared):
            log.info("Stuck-case scan: %d flag(s) standing, %d raised, %d cleared",
                     result.flagged, result.raised, result.cleared)

    def _wake_for_next_timer(self) -> None:
        now = self.services.clock.now()
        with self.services.uow(read_only=True) as uow:
            upcoming = uow.timers.due(now + self.poll_interval, limit=WAKE_LOOKAHEAD)
        # When a timer can next be fired: its due time, after any back-off, after another scheduler's lease.
        firable = [max(t.due_at, t.retry_at or t.due_at, t.lease_expires_at or t.due_at) for t in upcoming]
        wake_at = min(firable, default=None)
        if wake_at is None or wake_at >= now + self.poll_interval:
            return
        # Never sooner than a moment from now: a timer that stays firable (a conflict) must not spin the poll.
        wake_at = max(wake_at, now + MIN_WAKE_GAP)
        self.scheduler.add_job(self.poll, "date", run_date=wake_at, id="wake_for_timer",
                               replace_existing=True, misfire_grace_time=None)

    def stop_polling(self) -> None:
        """Start no more polls (safe from a signal handler: it takes no lock)."""
        self._stopping = True

    def quiesce(self, timeout: float = 60) -> None:
        """Let a poll in progress finish and start no more, before APScheduler shuts down.

        APScheduler holds its job-store lock while it waits for running jobs at shutdown;
        a poll planning its next wake-up (add_job) at that moment would wait for that lock
        forever. So the poll is stopped first.
        """
        self.stop_polling()
        if self._polling.acquire(timeout=timeout):
            self._polling.release()

    def release_leases(self) -> None:
        """Hand back the timers this scheduler holds but has not fired (at a clean shutdown)."""
        with self.services.uow() as uow:
            uow.timers.release_all(owner=self.owner)
            uow.commit()


def start_embedded_scheduler(app, *, reloading: bool = False) -> TimerScheduler | None:
    """Start the timer poll in this web process, once, and never in a reloader's watcher process.

    Under Werkzeug's reloader (`reloading`) two processes run: the watcher, which only
    restarts the other, and the server, which Werkzeug marks with WERKZEUG_RUN_MAIN=true.
    """
    if reloading and os.environ.get("WERKZEUG_RUN_MAIN") != "true":
        return None
    with _registry_lock:
        running = _running.get(os.getpid())
        if running is not None:
            return running
        background = BackgroundScheduler(timezone=timezone.utc)
        timer_scheduler = TimerScheduler(app, background)
        background.start()
        _running[os.getpid()] = timer_scheduler
    log.info("Scheduler %s started in the web process, polling every %s s",
             timer_scheduler.owner, timer_scheduler.poll_interval.total_seconds())
    return timer_scheduler


def stop_embedded_scheduler() -> None:
    """Stop this process's embedded scheduler, if it runs, and hand back its leases."""
    with _registry_lock:
        running = _running.pop(os.getpid(), None)
    if running is not None:
        running.quiesce()
        running.scheduler.shutdown(wait=True)
        running.release_leases()


def run_worker(app) -> None:
    """Run the timer poll alone, in the foreground (`casework worker`), until SIGTERM or Ctrl-C."""
    with _registry_lock:
        if os.getpid() in _running:
            raise RuntimeError("This process already runs a scheduler.")
        blocking = BlockingScheduler(timezone=timezone.utc)
        timer_scheduler = TimerScheduler(app, blocking)
        _running[os.getpid()] = timer_scheduler

    def stop(signum, frame):
        log.info("Scheduler %s stopping (signal %d)", timer_scheduler.owner, signum)
        timer_scheduler.stop_polling()
        blocking.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    log.info("Scheduler %s started, polling every %s s", timer_scheduler.owner,
             timer_scheduler.poll_interval.total_seconds())
    try:
        blocking.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        # Let a poll in progress finish its transaction before the leases go back.
        timer_scheduler.quiesce()
        with _registry_lock:
            _running.pop(os.getpid(), None)
        timer_scheduler.release_leases()
        log.info("Scheduler %s stopped", timer_scheduler.owner)
