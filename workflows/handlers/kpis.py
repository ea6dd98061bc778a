"""The managers' KPIs: every setting a supervisor covers, or the one they chose, over a period of days."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .. import kpis
from ..errors import Forbidden, InvalidInput
from ..kpis import Kpi, Period, SettingFacts
from ..model import User
from ..ports import UnitOfWork
from ..services import Services
from .common import is_supervisor


@dataclass
class SettingKpis:
    setting: str
    kpis: list[Kpi]


@dataclass
class KpiReport:
    """The KPIs of each setting shown, the period they cover, and every setting the asker may choose."""

    period: Period
    settings: list[SettingKpis]
    choices: list[str]


def kpi_report(services: Services, *, actor: User, first: str = "", last: str = "", setting: str = "") -> KpiReport:
    """Compute the KPIs of the settings a supervisor covers over a period (default: the 30 days ending today)."""
    if not is_supervisor(actor):
        raise Forbidden("Only supervisors and managers see the KPIs.")
    setting = (setting or "").strip()
    if len(setting) > 100:
        raise InvalidInput("The KPIs cannot be shown for that setting.", {"setting": ["Use at most 100 characters."]})
    zone, now = services.due_policy.zone, services.clock.now()
    period = Period.parse(first=first, last=last, today=now.astimezone(zone).date())
    start, end = period.start(zone), period.end(zone)
    with services.uow(read_only=True) as uow:
        choices = _covered_settings(uow, actor)
        shown = [choice for choice in choices if choice == setting or not setting]
        # A period may end in the future: a task is overdue only once its due time has passed.
        facts = {choice: _facts(uow, choice, start, end, overdue_by=min(end, now)) for choice in shown}
    return KpiReport(period, [SettingKpis(s, kpis.compute(s, facts[s], period, zone)) for s in shown], choices)


def _covered_settings(uow: UnitOfWork, actor: User) -> list[str]:
    """The settings of the deployed processes that the actor covers, those with KPIs of their own first."""
    known = kpis.SETTING_ORDER
    covered = {setting for setting in uow.processes.settings_by_process().values() if actor.covers(setting)}
    return sorted(covered, key=lambda setting: (known.index(setting) if setting in known else len(known), setting))


def _facts(uow: UnitOfWork, setting: str, start: datetime, end: datetime, *, overdue_by: datetime) -> SettingFacts:
    reads = kpis.reads(setting)
    return SettingFacts(
        cases=uow.kpis.case_data(setting=setting, start=start, end=end, keys=reads.keys) if reads.keys else [],
        submissions=uow.kpis.submissions(setting=setting, start=start, end=end, element_ids=reads.forms),
        tasks=uow.kpis.completed_tasks(setting=setting, start=start, end=end),
        open_overdue=uow.kpis.open_overdue_by_assignee(setting=setting, due_before=overdue_by),
    )
