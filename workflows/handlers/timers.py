"""Use cases on timers: claim due timers with a lease, fire each case's in its own transaction.

The rules, after the Camunda and Flowable job executors (DESIGN §6):
- a timer is never fired before its due time, and once only: the firing transaction
  checks that this scheduler still holds the lease, and saves the case with its
  optimistic version, so two schedulers that both believe they hold a timer cannot
  both commit;
- a lease has an owner and an expiry: a crashed scheduler's timers are taken over when
  the lease runs out;
- a failing timer is retried after growing delays, then raises an incident; it never spins.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..derive import record_event, sync_case
from ..engine import WaitingTimer
from ..errors import CaseworkError, EngineFailure, StaleCase
from ..log_safety import failure_outline
from ..model import Case, CaseEvent, CaseStatus, Timer, TimerStatus
from ..services import Services
from .common import SCHEDULER, record_incident

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimerPolicy:
    """How the scheduler claims and retries timers (CASEWORK_TIMER_* settings)."""

    lease: timedelta = timedelta(seconds=60)
    batch_size: int = 50
    # How many cases of a batch fire at once: on PostgreSQL one firing mostly waits for
    # the database, so a few threads keep a worker busy; SQLite has one writer anyway.
    threads: int = 1
    # The delay before each retry of a failing timer; when they are used up, an incident.
    retry_delays: Sequence[timedelta] = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15))

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1


DEFAULT_TIMER_POLICY = TimerPolicy()


def fire_due_timers(
    services: Services, *, owner: str = SCHEDULER, policy: TimerPolicy = DEFAULT_TIMER_POLICY
) -> int:
    """Claim and fire every timer that is due, batch by batch; return how many fired.

    Each case's timers fire in a transaction of their own; one failing case never stops
    the others. Timers leased by another scheduler are left alone until their lease expires.
    """
    def fire(item: tuple[int, list[Timer]]) -> int:
        return _fire_case_timers(services, item[0], item[1], owner, policy)

    fired = 0
    with ThreadPoolExecutor(policy.threads, thread_name_prefix="timer") if policy.threads > 1 else nullcontext() as pool:
        while True:
            now = services.clock.now()
            with services.uow() as uow:
                claimed = uow.timers.claim(now, owner=owner, lease_until=now + policy.lease, limit=policy.batch_size)
                uow.commit()
            by_case: dict[int, list[Timer]] = {}
            for timer in claimed:
                by_case.setdefault(timer.case_id, []).append(timer)
            fired_now = sum((pool.map if pool else map)(fire, by_case.items()))
            fired += fired_now
            # A short batch means nothing firable is left; a batch that fired nothing (all
            # conflicts or failures) is left to the next poll rather than retried at once.
            if len(claimed) < policy.batch_size or not fired_now:
                return fired


def _fire_case_timers(services: Services, case_id: int, claimed: list[Timer], owner: str, policy: TimerPolicy) -> int:
    now = services.clock.now()
    try:
        with services.uow() as uow:
            case = uow.cases.get(case_id)
            if case is None or case.status != CaseStatus.ACTIVE:
                _release(uow, claimed, owner)
                uow.commit()
                return 0
            # Read the timer rows after the case: if another scheduler took them over and
            # fired them in between, they are no longer pending or no longer ours.
            pending = {timer.id: timer for timer in uow.timers.for_case(case_id, pending_only=True)}
            if not any(pending.get(t.id) and pending[t.id].lease_owner == owner for t in claimed):
                return 0
            run = services.engine.resume(services.bundles.get(uow, case.process_version_id), case.state)
            fired = run.fire_due_timers(now=now)
            record_fired(uow, case, now, SCHEDULER, fired, pending.values(), worker=owner)
            sync_case(uow, case, run, now=now, actor=SCHEDULER, policy=services.due_policy,
                      pending_timers=list(pending.values()))
            if not fired:
                # The engine holds no due timer for these rows (sync has just corrected them).
                _release(uow, claimed, owner)
            uow.commit()
            return len(fired)
    except StaleCase:
        # Someone acted on the case meanwhile: the next poll sees its new state.
        _release_after_conflict(services, claimed, owner)
        return 0
    except EngineFailure as failure:
        _timer_failed(services, case_id, claimed, owner, failure, policy)
        return 0
    except CaseworkError as problem:  # the diagram or the case data, e.g. a due rule that cannot be read
        failure = EngineFailure(f"Firing the timer failed: {problem.message}", kind="timer")
        _timer_failed(services, case_id, claimed, owner, failure, policy)
        return 0
    except Exception as error:  # a bug or a database fault must not leave the timer spinning
        log.error("Firing the timers of case %s failed\n%s", case_id, failure_outline(error))
        failure = EngineFailure(f"Firing the timer failed: {error.__class__.__name__}: {error}", kind="timer")
        _timer_failed(services, case_id, claimed, owner, failure, policy)
        return 0


def record_fired(uow, case: Case, now: datetime, actor: str, fired: list[WaitingTimer], rows: Iterable[Timer],
                 **extra) -> None:
    """Append a `timer_fired` event for each timer that fired, with its row's id and how late it fired."""
    by_ref = {row.task_ref: row for row in rows}
    for timer in fired:
        row = by_ref.get(timer.task_ref)
        due_at = timer.due_at or (row.due_at if row else None)
        record_event(uow, case, now, actor, "timer_fired", {
            "element_id": timer.element_id,
            "timer_id": row.id if row else None,
            "due_at": due_at.isoformat() if due_at else None,
            "late_seconds": round((now - due_at).total_seconds(), 3) if due_at else None,
            **extra,
        })


def _release(uow, claimed: list[Timer], owner: str) -> None:
    for timer in claimed:
        uow.timers.release(timer.id, owner=owner)


def _release_after_conflict(services: Services, claimed: list[Timer], owner: str) -> None:
    with services.uow() as uow:
        _release(uow, claimed, owner)
        uow.commit()


def _timer_failed(
    services: Services, case_id: int, claimed: list[Timer], owner: str, failure: EngineFailure, policy: TimerPolicy
) -> None:
    """Count a failed attempt on each claimed timer: back off, or give up with an incident."""
    now = services.clock.now()
    exhausted: list[Timer] = []
    with services.uow() as uow:
        for claimed_timer in claimed:
            timer = uow.timers.get(claimed_timer.id)
            if timer is None or timer.status != TimerStatus.PENDING or timer.lease_owner != owner:
                continue
            timer.attempts += 1
            timer.last_error = failure.message
            timer.lease_owner = timer.lease_expires_at = None
            if timer.attempts >= policy.max_attempts:
                timer.status, timer.retry_at = TimerStatus.FAILED, None
                exhausted.append(timer)
            else:
                timer.retry_at = now + policy.retry_delays[timer.attempts - 1]
            uow.timers.update(timer)
            uow.events.append(_failed_event(timer, now, failure))
        uow.commit()
    if exhausted:
        record_incident(services, case_id, failure, actor=SCHEDULER, data={
            "timer_ids": [timer.id for timer in exhausted], "attempts": exhausted[0].attempts,
        })


def _failed_event(timer: Timer, now: datetime, failure: EngineFailure) -> CaseEvent:
    return CaseEvent(timer.case_id, now, SCHEDULER, "timer_failed", {
        "timer_id": timer.id, "element_id": timer.element_id, "attempt": timer.attempts,
        "retry_at": timer.retry_at.isoformat() if timer.retry_at else None, "error": failure.message,
    })
