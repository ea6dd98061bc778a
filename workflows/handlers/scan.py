"""The stuck-case scan: flag the cases a manager must look at, and say why and since when.

It runs inside the scheduler's poll in every scheduler process; a mark in the database
lets exactly one of them scan per interval (a scan that fails is tried again after the
next interval). The findings then replace the stored flags, and each newly raised flag
leaves a `case_flagged` event in its case's audit trail, the record of the escalation.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..model import CaseEvent, CaseFlag, FlagReason
from ..services import Services
from .common import SCHEDULER

STUCK_SCAN = "stuck_scan"


@dataclass(frozen=True)
class ScanResult:
    """What one scan found: the flags standing per reason, and how many it raised and cleared."""

    scanned_at: datetime
    counts: dict[FlagReason, int]
    raised: int
    cleared: int

    @property
    def flagged(self) -> int:
        return sum(self.counts.values())


def run_stuck_scan(
    services: Services, *, owner: str, every: timedelta, idle_days: float, timer_grace: timedelta
) -> ScanResult | None:
    """Flag stuck cases, unless another scheduler scanned less than `every` ago (then return None)."""
    now = services.clock.now()
    # Three short transactions rather than one long one: on SQLite a write transaction
    # holds the only write lock, and the search may take seconds on a large database.
    with services.uow() as uow:
        if not uow.marks.take(STUCK_SCAN, owner=owner, now=now, every=every):
            return None
        uow.commit()
    with services.uow(read_only=True) as uow:
        findings = uow.flags.find_stuck(
            now=now, timer_due_before=now - timer_grace, idle_before=now - timedelta(days=idle_days)
        )
    with services.uow() as uow:
        changes = uow.flags.replace_all(findings, now=now)
        for flag in changes.raised:
            uow.events.append(CaseEvent(flag.case_id, now, SCHEDULER, "case_flagged", _flagged_payload(flag)))
        uow.commit()
    counts = Counter(finding.reason for finding in findings)
    return ScanResult(
        scanned_at=now,
        counts={reason: counts[reason] for reason in FlagReason},
        raised=len(changes.raised),
        cleared=len(changes.cleared),
    )


def _flagged_payload(flag: CaseFlag) -> dict:
    return {
        "flag_id": flag.id, "reason": FlagReason(flag.reason).value, "subject": flag.subject,
        "detail": flag.detail, "since": flag.since.isoformat(),
    }
