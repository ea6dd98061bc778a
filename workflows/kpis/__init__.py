"""The managers' KPIs: per setting, over a period of whole days, computed from what the processes record.

Definitions (each KPI's `counted` text says the same on the page):

Acute hospital — stays discharged in the period (`discharged_at`):
- Length of stay against GMLOS: per stay with `gmlos_days`, LOS = `length_of_stay_days` (midnights from
  the order to discharge); mean LOS, mean GMLOS, index = sum LOS / sum GMLOS, excess days = sum of
  max(0, LOS - GMLOS); overall and per working DRG.
- Avoidable days by reason: entries of `avoidable_days` whose day is in the period (any stay), by reason.
- Reviews done on time: review tasks completed in the period with a due time; on time when completed_at <= due_at.
- IM and MOON compliance (Medicare beneficiaries): IM within 48 h of `inpatient_order_at`; the follow-up IM,
  when needed, within 2 calendar days before the discharge day and at least 4 h before discharge; MOON,
  when observation lasted over 24 h, within 36 h of its start and before it ended.
- Discharge before noon: discharge time before 12:00 local; overall and per disposition.
Inpatient rehabilitation — stays discharged in the period (day 1 = admission day):
- Plan of care within 4 days: `plan_of_care_completed_at` on day 4 at the latest, of stays that owed one.
- Weekly team conference: first conference by day 8, then every 7 days at most, until discharge.
Workers' compensation:
- Days to first contact: from `referral_received_at` to the earliest `contacted_at` of the initial-contact
  forms, per party and for any party, for contacts made in the period.
- Days to return to work: from `disability_start_date` to the first accepted transitional plan's start
  (modified duty) and the first confirmed return-to-work date (full duty), when that date is in the period.
- Report timeliness: report tasks completed in the period with a due time; on time when completed_at <= due_at.
Every setting:
- Task completion time: hours from created_at to completed_at of the tasks completed in the period, per type.
- Overdue tasks per team member: tasks completed late in the period, plus open tasks assigned to them
  that fell due before the period ended (or before now, for a period not over yet).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo

from . import acute, rehab, tasks, workers_comp
from .base import CaseFacts, Figure, Kpi, Period, SettingFacts, Submission, TaskFacts


@dataclass(frozen=True)
class Reads:
    """What a setting's KPIs read beyond its tasks: case-data values and submitted forms."""

    keys: tuple[str, ...] = ()
    forms: tuple[str, ...] = ()  # task types (element ids) whose submitted data is read


_SETTINGS: dict[str, tuple[Reads, Callable[[SettingFacts, Period, tzinfo], list[Kpi]]]] = {
    acute.SETTING: (Reads(keys=acute.KEYS), acute.kpis),
    rehab.SETTING: (Reads(keys=rehab.KEYS), rehab.kpis),
    workers_comp.SETTING: (Reads(keys=workers_comp.KEYS, forms=workers_comp.FORMS), workers_comp.kpis),
}
SETTING_ORDER = tuple(_SETTINGS)


def reads(setting: str) -> Reads:
    """What to read for a setting's KPIs (a setting with no KPIs of its own reads only its tasks)."""
    return _SETTINGS[setting][0] if setting in _SETTINGS else Reads()


def compute(setting: str, facts: SettingFacts, period: Period, zone: tzinfo) -> list[Kpi]:
    """Compute a setting's KPIs: its own, then the task KPIs every setting has."""
    own = _SETTINGS[setting][1](facts, period, zone) if setting in _SETTINGS else []
    return own + tasks.kpis(facts)


__all__ = ["CaseFacts", "Figure", "Kpi", "Period", "Reads", "SETTING_ORDER", "SettingFacts", "Submission",
           "TaskFacts", "compute", "reads"]
