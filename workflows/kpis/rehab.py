"""Inpatient rehabilitation KPIs: plan of care within 4 days, weekly team conferences.

A stay counts in a period when it was admitted (`admitted_at`) and its `discharged_at` falls on one of
the period's days, on the organisation's calendar. Day 1 is the admission day.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta, tzinfo

from .base import ALL_STAYS, CaseFacts, Kpi, Period, SettingFacts, entries, label, local_day, shares

SETTING = "inpatient_rehab"
KEYS = ("admitted_at", "discharged_at", "plan_of_care_completed_at", "idt_conferences", "impairment_group")
WEEK = timedelta(days=7)

Stay = tuple[CaseFacts, date, date]  # a stay, its admission day and its discharge day


def kpis(facts: SettingFacts, period: Period, zone: tzinfo) -> list[Kpi]:
    """Compute the inpatient rehabilitation facility's KPIs over the period."""
    stays = []
    for case in facts.cases:
        admitted, left = local_day(case.data.get("admitted_at"), zone), local_day(case.data.get("discharged_at"), zone)
        if admitted is not None and period.holds(left) and left >= admitted:
            stays.append((case, admitted, left))
    return [plan_of_care(stays, zone), team_conferences(stays, zone)]


def plan_of_care(stays: list[Stay], zone: tzinfo) -> Kpi:
    """Stays whose individualised plan of care was completed by day 4, of the stays that owed one."""
    def judged(case: CaseFacts, admitted: date, left: date) -> bool | None:
        planned = local_day(case.data.get("plan_of_care_completed_at"), zone)
        day_4 = admitted + timedelta(days=3)
        if planned is None and left <= day_4:
            return None  # discharged by day 4 with no plan: none was owed yet
        return planned is not None and planned <= day_4

    return _compliance(
        "plan_of_care", "Plan of care within 4 days", stays, judged,
        "IRF stays discharged in the period. Day 1 is the admission day. A stay owes a plan of care once it "
        "passes day 4, or when one was recorded; it complies when the plan of care was completed on day 4 at "
        "the latest (the time recorded on the plan-of-care form).")


def team_conferences(stays: list[Stay], zone: tzinfo) -> Kpi:
    """Stays whose team conferences came at least every 7 days (the first by day 8), of the stays discharged."""
    def judged(case: CaseFacts, admitted: date, left: date) -> bool:
        deadline = admitted + WEEK  # day 8
        held = sorted(day for entry in entries(case.data.get("idt_conferences"))
                      if (day := local_day(entry.get("held_on"), zone)) is not None)
        for day in held:
            if day > deadline:
                return False
            deadline = day + WEEK
        return left <= deadline

    return _compliance(
        "team_conferences", "Weekly team conference", stays, judged,
        "IRF stays discharged in the period. A stay complies when its first interdisciplinary team conference "
        "was held by day 8 (day 1 is the admission day), each later one no more than 7 days after the one "
        "before, and the patient left no more than 7 days after the last one (a stay of under 8 days owes none).")


def _compliance(key: str, title: str, stays: list[Stay], judged: Callable[..., bool | None], counted: str) -> Kpi:
    verdicts = [(label(case.data.get("impairment_group")), verdict) for case, admitted, left in stays
                if (verdict := judged(case, admitted, left)) is not None]
    return Kpi(key, title, counted, len(verdicts), shares(verdicts, "Complied", every=ALL_STAYS), chart="Complied",
               target=100.0, unit="stays")
