"""Workers' compensation KPIs: days to first contact, days to return to work, report timeliness.

Milestones come from the forms people submitted (the audit trail keeps each submission), so a
second submission of the same form never hides the first: the earliest one counts.
"""
from __future__ import annotations

from datetime import date, datetime, tzinfo

from .base import (
    Figure,
    Kpi,
    Period,
    SettingFacts,
    Submission,
    average,
    count,
    days_between,
    local_day,
    middle,
    moment,
    on_time,
)

SETTING = "workers_comp"
KEYS = ("referral_received_at", "disability_start_date")
WORKER = "Injured worker or their attorney"
CONTACTS = {
    "contact_injured_worker": WORKER,
    "contact_worker_attorney": WORKER,  # a represented worker is reached through the attorney
    "contact_employer": "Employer",
    "contact_treating_physician": "Treating physician",
}
FIRST_CONTACT = "Any party (first contact)"
MODIFIED_DUTY, FULL_DUTY = "plan_transitional_return_to_work", "confirm_return_to_work"
FORMS = (*CONTACTS, MODIFIED_DUTY, FULL_DUTY)
REPORTS = {
    "initial_assessment_report": "Initial assessment report",
    "progress_report": "Progress report",
    "closure_report": "Closure report",
}


def kpis(facts: SettingFacts, period: Period, zone: tzinfo) -> list[Kpi]:
    """Compute the workers' compensation KPIs over the period."""
    return [
        first_contact(facts, period, zone),
        return_to_work(facts, period, zone),
        on_time("report_timeliness", "Report timeliness", facts.tasks, REPORTS, every="All reports",
                unit="report tasks"),
    ]


def first_contact(facts: SettingFacts, period: Period, zone: tzinfo) -> Kpi:
    """Days from the referral to the first contact with each party, and with any party."""
    firsts: dict[int, dict[str, datetime]] = {}
    for submitted in facts.submissions:
        party = CONTACTS.get(submitted.element_id)
        if party is not None:
            when = moment(submitted.data.get("contacted_at"), zone) or submitted.at
            known = firsts.setdefault(submitted.case_id, {})
            known[party] = min(when, known.get(party, when))
    days: dict[str, list[float]] = {group: [] for group in (FIRST_CONTACT, *dict.fromkeys(CONTACTS.values()))}
    counted = set()
    for case in facts.cases:
        referred, reached = moment(case.data.get("referral_received_at"), zone), firsts.get(case.case_id)
        if referred is None or not reached:
            continue
        for group, when in ((FIRST_CONTACT, min(reached.values())), *reached.items()):
            if period.holds(local_day(when, zone)):
                days[group].append(days_between(referred, when))
                counted.add(case.case_id)
    return Kpi("first_contact", "Days to first contact",
               "Cases whose first contact with a party was made in the period (the contact time recorded on the "
               "initial-contact form): days from the referral being received to that contact. A represented "
               "worker's first contact is the one with their attorney. Any party: the first contact of all.",
               len(counted), _durations(days), chart="Mean days")


def return_to_work(facts: SettingFacts, period: Period, zone: tzinfo) -> Kpi:
    """Days from the start of disability to the first return to modified duty, and to full duty."""
    modified = _earliest(facts.submissions, MODIFIED_DUTY, "transitional_start_date", zone,
                         accepted=("worker_accepted", "transitional_duty_in_place"))
    full = _earliest(facts.submissions, FULL_DUTY, "return_to_work_date", zone)
    days: dict[str, list[float]] = {"Modified duty": [], "Full duty": []}
    for case in facts.cases:
        disabled = local_day(case.data.get("disability_start_date"), zone)
        for group, returns in (("Modified duty", modified), ("Full duty", full)):
            back = returns.get(case.case_id)
            if disabled is not None and period.holds(back) and back >= disabled:
                days[group].append((back - disabled).days)
    return Kpi("return_to_work", "Days to return to work",
               "Cases whose worker went back to work in the period: days from the start of disability (the date "
               "of injury unless the case says otherwise) to the start date of the first transitional "
               "return-to-work plan the worker accepted (modified duty), and to the return-to-work date the "
               "employer confirmed (full duty).", len(days["Modified duty"]) + len(days["Full duty"]),
               _durations(days), chart="Mean days", unit="returns to work")


def _earliest(submissions: list[Submission], element_id: str, field: str, zone: tzinfo,
              accepted: tuple[str, ...] = ()) -> dict[int, date]:
    """Each case's earliest date in `field` of the submissions of one form (those with every `accepted` flag set)."""
    earliest: dict[int, date] = {}
    for submitted in submissions:
        if submitted.element_id != element_id or not all(submitted.data.get(flag) for flag in accepted):
            continue
        day = local_day(submitted.data.get(field), zone)
        if day is not None:
            earliest[submitted.case_id] = min(day, earliest.get(submitted.case_id, day))
    return earliest


def _durations(days: dict[str, list[float]]) -> list[Figure]:
    figures = []
    for group, values in days.items():
        figures += [count(group, "Cases", len(values), "cases"), average(group, "Mean days", values, "days"),
                    middle(group, "Median days", values, "days")]
    return figures
