"""Acute hospital KPIs: LOS against GMLOS, avoidable days, reviews on time, Medicare notices, discharge before noon.

A stay counts in a period when its `discharged_at` (the discharge form's time) falls on one of the
period's days, on the organisation's calendar; cancelled cases are never counted.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from .. import calendar
from .base import (
    ALL_STAYS,
    CaseFacts,
    Figure,
    Kpi,
    Period,
    SettingFacts,
    average,
    count,
    entries,
    grouped,
    local_day,
    moment,
    number,
    on_time,
    share,
    shares,
)

SETTING = "acute_hospital"
KEYS = (
    "discharged_at", "discharge_disposition", "order_at", "length_of_stay_days", "gmlos_days", "working_drg",
    "avoidable_days", "medicare_beneficiary", "inpatient_order_at", "im_delivered_at", "followup_im_needed",
    "followup_im_delivered_at", "observation_started_at", "moon_delivered_at",
)
REVIEWS = {
    "admission_review": "Admission review",
    "continued_stay_review": "Continued-stay review",
    "gmlos_review": "Review at GMLOS",
    "physician_advisor_review": "Physician advisor review",
    "second_committee_review": "Second committee review",
}
AVOIDABLE_REASONS = {
    "physician": "Physician", "hospital": "Hospital", "payer": "Payer",
    "post_acute_availability": "Post-acute availability", "patient_family": "Patient or family",
}
DISPOSITIONS = {
    "home": "Home", "home_health": "Home health", "snf": "SNF", "irf": "IRF", "ltch": "LTCH", "hospice": "Hospice",
    "left_against_medical_advice": "Left against medical advice", "acute_transfer": "Transfer to acute care",
    "expired": "Expired",
}
Stay = tuple[CaseFacts, datetime]  # a stay and when it was discharged


def kpis(facts: SettingFacts, period: Period, zone: tzinfo) -> list[Kpi]:
    """Compute the acute hospital's KPIs over the period."""
    stays = [(case, left) for case in facts.cases
             if (left := moment(case.data.get("discharged_at"), zone)) and period.holds(local_day(left, zone))]
    return [
        length_of_stay(stays),
        avoidable_days(facts.cases, period, zone),
        on_time("reviews_on_time", "Reviews done on time", facts.tasks, REVIEWS, every="All reviews",
                unit="review tasks"),
        notices(stays, zone),
        before_noon(stays, zone),
    ]


def length_of_stay(stays: list[Stay]) -> Kpi:
    """LOS against GMLOS: mean LOS, mean GMLOS, index (sum LOS / sum GMLOS) and excess days, in all and per DRG."""
    measured = []
    for case, left in stays:
        gmlos, los = number(case.data.get("gmlos_days")), _length_of_stay(case.data, left)
        if gmlos and los is not None:
            measured.append((f"DRG {case.data.get('working_drg') or 'not recorded'}", los, gmlos))
    groups = {ALL_STAYS: measured, **dict(sorted(grouped((row[0], row) for row in measured).items()))}
    figures = []
    for group, rows in groups.items():
        days, expected = [row[1] for row in rows], [row[2] for row in rows]
        figures += [
            count(group, "Stays", len(rows), "stays"),
            average(group, "Mean length of stay", days, "days"),
            average(group, "Mean GMLOS", expected, "days"),
            Figure(group, "LOS/GMLOS index", sum(days) / sum(expected) if rows else None, "index",
                   sum(days), sum(expected)),
            count(group, "Excess days", sum(max(0.0, los - gmlos) for los, gmlos in zip(days, expected)), "days"),
        ]
    return Kpi("length_of_stay", "Length of stay against GMLOS",
               "Stays discharged in the period with a GMLOS recorded. Length of stay: midnights from the order to "
               "discharge, as the stay recorded it. Index: total length of stay divided by total GMLOS (1.0 = as "
               "expected). Excess days: the days each stay went past its GMLOS, added up. Stays without a GMLOS "
               "are left out.", len(measured), figures, chart="LOS/GMLOS index", target=1.0, unit="stays")


def avoidable_days(cases: list[CaseFacts], period: Period, zone: tzinfo) -> Kpi:
    """Avoidable days whose day falls in the period, by the reason the continued-stay review gave."""
    reasons = [_named(AVOIDABLE_REASONS, entry.get("reason"), "Not given")
               for case in cases for entry in entries(case.data.get("avoidable_days"))
               if period.holds(local_day(entry.get("day"), zone))]
    labels = list(AVOIDABLE_REASONS.values()) + (["Not given"] if "Not given" in reasons else [])
    figures = []
    for label in ["All reasons", *labels]:
        of_label = len(reasons) if label == "All reasons" else reasons.count(label)
        figures += [count(label, "Avoidable days", of_label, "days"), share(label, "Share", of_label, len(reasons))]
    return Kpi("avoidable_days", "Avoidable days by reason",
               "Avoidable days recorded by continued-stay reviews whose day falls in the period, on any stay, "
               "discharged or not, by the reason the review gave. Share: of all avoidable days in the period.",
               len(reasons), figures, chart="Avoidable days", unit="avoidable days", total="All reasons",
               empty="No avoidable days in this period")


def notices(stays: list[Stay], zone: tzinfo) -> Kpi:
    """IM, follow-up IM and MOON delivered on time, for Medicare beneficiaries' stays discharged in the period."""
    im, followup, moon = [], [], []
    for case, left in stays:
        data = case.data
        if not data.get("medicare_beneficiary"):
            continue
        order = moment(data.get("inpatient_order_at"), zone)
        if order is not None:
            im.append(_by(data.get("im_delivered_at"), order + timedelta(days=2), zone))
        if data.get("followup_im_needed"):
            given = moment(data.get("followup_im_delivered_at"), zone)
            followup.append(given is not None and given <= left - timedelta(hours=4)
                            and local_day(given, zone) >= local_day(left, zone) - timedelta(days=2))
        observed = moment(data.get("observation_started_at"), zone)
        if observed is not None:
            ended = order if order is not None and order > observed else left
            if ended - observed > timedelta(hours=24):
                moon.append(_by(data.get("moon_delivered_at"), min(observed + timedelta(hours=36), ended), zone))
    figures = [share("IM within 2 days of the inpatient order", "On time", sum(im), len(im)),
               share("Follow-up IM before discharge", "On time", sum(followup), len(followup)),
               share("MOON for observation over 24 h", "On time", sum(moon), len(moon))]
    return Kpi("notices", "IM and MOON compliance",
               "Medicare beneficiaries' stays discharged in the period. IM: owed with an inpatient order; on time "
               "when delivered within 2 days (48 h) of it. Follow-up IM: owed when the stay found it needed; on "
               "time when delivered no earlier than 2 calendar days before the discharge day and at least 4 hours "
               "before discharge. MOON: owed when observation lasted more than 24 h (until the inpatient order, "
               "or discharge); on time when delivered within 36 h of the start of observation and before it ended. "
               "A notice never delivered is not on time.", len(im) + len(followup) + len(moon), figures,
               chart="On time", target=100.0, unit="notices owed")


def before_noon(stays: list[Stay], zone: tzinfo) -> Kpi:
    """The share of stays discharged before noon, overall and per discharge disposition."""
    early = [(_named(DISPOSITIONS, case.data.get("discharge_disposition"), "Not recorded"),
              left.astimezone(zone).time() < time(12)) for case, left in stays]
    return Kpi("discharge_before_noon", "Discharge before noon",
               "Stays discharged in the period, overall and by discharge disposition. Before noon: the discharge "
               "time recorded on the discharge form is before 12:00 on the organisation's clock.",
               len(early), shares(early, "Before noon", every=ALL_STAYS), chart="Before noon", unit="stays")


def _length_of_stay(data: dict[str, Any], left: datetime) -> int | None:
    recorded = number(data.get("length_of_stay_days"))
    if recorded is not None:
        return int(recorded)
    ordered = moment(data.get("order_at"), left.tzinfo)
    return calendar.length_of_stay(ordered, left) if ordered is not None and ordered <= left else None


def _by(value: Any, deadline: datetime, zone: tzinfo) -> bool:
    given = moment(value, zone)
    return given is not None and given <= deadline


def _named(names: dict[str, str], code: Any, otherwise: str) -> str:
    return names.get(code, otherwise) if isinstance(code, str) else otherwise
