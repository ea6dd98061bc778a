"""When a human task is due: the due rule in its properties, or its boundary timer.

A due rule is a set of spiffworkflow properties on the user task (see bpmn/README.md):
`dueIn` (an ISO 8601 duration, or the name of a case-data variable holding one),
`calendar` ("business", "calendar" or a case-data variable holding one of them),
`dueFrom` (a case-data variable holding the moment the clock starts) and `dueTime` (a
local time of day, "12:00" for "noon"). Days are counted on the organisation's local
calendar, so "P1D" keeps the time of day across a daylight-saving change. On the
calendar clock hours ("PT24H") are elapsed time; on the business calendar they are
working hours, counted on the local wall clock.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import calendar
from .errors import DiagramError, DiagramProblem

AT_RISK_FRACTION = 0.8
DEFAULT_WORKING_HOURS = "08:00-17:00"
_VARIABLE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ISO_DURATION = re.compile(r"^P(\d|T\d)", re.IGNORECASE)
_CLOCK_PARTS = ("hours", "minutes", "seconds")
_CALENDARS = ("business", "calendar")


@dataclass(frozen=True)
class DuePolicy:
    """The organisation's calendar: its time zone, holidays, working hours and when a task counts as at risk."""

    zone: tzinfo = timezone.utc
    holidays: frozenset[date] = field(default_factory=frozenset)
    at_risk_fraction: float = AT_RISK_FRACTION
    working_hours: calendar.WorkingHours = field(default_factory=calendar.WorkingHours)

    @classmethod
    def of(cls, *, zone_name: str | None = None, holidays: Iterable[Any] = (),
           at_risk_fraction: float = AT_RISK_FRACTION,
           working_hours: str | None = DEFAULT_WORKING_HOURS) -> "DuePolicy":
        """Build a policy from settings text: an IANA zone name, ISO dates and working hours ("08:00-17:00")."""
        try:
            zone = ZoneInfo(zone_name) if zone_name and zone_name.upper() != "UTC" else timezone.utc
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{zone_name}' is not a time zone name, e.g. \"America/New_York\"") from None
        if not 0 < at_risk_fraction <= 1:
            raise ValueError(f"The at-risk fraction must be above 0 and at most 1, got {at_risk_fraction}")
        hours = calendar.WorkingHours.parse(working_hours if (working_hours or "").strip() else DEFAULT_WORKING_HOURS)
        return cls(zone=zone, holidays=frozenset(calendar.holiday_dates(holidays)),
                   at_risk_fraction=at_risk_fraction, working_hours=hours)


@dataclass(frozen=True)
class DueWindow:
    starts_at: datetime
    due_at: datetime
    at_risk_at: datetime


def due_window(
    properties: Mapping[str, Any],
    *,
    opened_at: datetime,
    data: Mapping[str, Any],
    policy: DuePolicy,
    element_id: str,
    boundary_due_at: datetime | None = None,
) -> DueWindow | None:
    """Work out a task's due and at-risk times; None when it has neither a due rule nor a boundary timer."""
    due_in = properties.get("dueIn")
    if not due_in:
        if boundary_due_at is None:
            return None
        return _window(opened_at, boundary_due_at, policy)
    try:
        starts_at = _clock_start(properties.get("dueFrom"), opened_at, data, policy)
        duration = _duration(str(due_in).strip(), data)
        local = starts_at.astimezone(policy.zone)
        business = _is_business_calendar(properties.get("calendar"), data)
        due_local = _add(local, duration, business=business, policy=policy)
        if properties.get("dueTime"):
            due_local = _at_time_of_day(due_local, str(properties["dueTime"]).strip(), policy)
    except ValueError as err:
        raise DiagramError(DiagramProblem(f"the due rule is not valid: {err}", element_id=element_id)) from err
    return _window(starts_at, due_local.astimezone(timezone.utc), policy)


def ready_task_window(ready, *, opened_at: datetime, data: Mapping[str, Any], policy: DuePolicy) -> DueWindow | None:
    """The due window of a task that has just opened (an engine ReadyTask), from its rule or boundary timer."""
    return due_window(ready.properties, opened_at=opened_at, data=data, policy=policy,
                      element_id=ready.element_id, boundary_due_at=ready.boundary_due_at)


def _window(starts_at: datetime, due_at: datetime, policy: DuePolicy) -> DueWindow:
    span = max(due_at - starts_at, timedelta(0))
    return DueWindow(starts_at, due_at, starts_at + span * policy.at_risk_fraction)


def _clock_start(due_from: Any, opened_at: datetime, data: Mapping[str, Any], policy: DuePolicy) -> datetime:
    if not due_from:
        return opened_at
    name = str(due_from).strip()
    if not _VARIABLE.match(name):
        raise ValueError(f"dueFrom must name a case-data variable, got {name!r}")
    value = data.get(name)
    if value in (None, ""):
        raise ValueError(f"dueFrom names '{name}', but the case has no value for it when the task opens")
    try:
        moment = calendar.parse_datetime(value)
    except (TypeError, ValueError):
        raise ValueError(f"dueFrom variable '{name}' holds {value!r}, not an ISO 8601 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=policy.zone)


def _duration(due_in: str, data: Mapping[str, Any]) -> dict[str, float]:
    if _ISO_DURATION.match(due_in):
        return calendar.parse_duration(due_in)
    if not _VARIABLE.match(due_in):
        raise ValueError(f"dueIn must be an ISO 8601 duration such as \"PT24H\", or the name of a variable; got {due_in!r}")
    value = data.get(due_in)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"dueIn names the variable '{due_in}', which holds {value!r} rather than a duration such as \"PT24H\"")
    return calendar.parse_duration(value)


def _is_business_calendar(value: Any, data: Mapping[str, Any]) -> bool:
    text = str(value if value is not None else "").strip()
    if not text:
        return False
    if text.lower() in _CALENDARS:
        return text.lower() == "business"
    if not _VARIABLE.match(text):
        raise ValueError(f"calendar must be \"business\", \"calendar\" or the name of a case-data variable "
                         f"holding one of them; got {text!r}")
    named = data.get(text)
    if not isinstance(named, str) or named.strip().lower() not in _CALENDARS:
        raise ValueError(f"calendar names the variable '{text}', which holds {named!r} "
                         f"rather than \"business\" or \"calendar\"")
    return named.strip().lower() == "business"


def _add(local: datetime, parts: dict[str, float], *, business: bool, policy: DuePolicy) -> datetime:
    """Add calendar parts on the local wall clock, then clock parts: working time or elapsed time."""
    clock = timedelta(**{p: parts.get(p, 0) for p in _CLOCK_PARTS})
    days = parts.get("days", 0) + 7 * parts.get("weeks", 0)
    if business:
        if parts.get("years") or parts.get("months"):
            raise ValueError("business-day due rules count days, weeks, hours and minutes only")
        if days != int(days):
            raise ValueError("business-day due rules count whole days")
        wall = calendar.add_business_days(local.replace(tzinfo=None), int(days), policy.holidays)
        if clock:
            # Working hours are local wall-clock hours, so they are counted before leaving local time.
            wall = calendar.add_working_time(wall, clock, hours=policy.working_hours, holidays=policy.holidays)
        return _localize(wall, policy.zone)
    calendar_parts = {p: v for p, v in parts.items() if p not in _CLOCK_PARTS}
    wall = local.replace(tzinfo=None)
    if any(calendar_parts.values()):
        wall = calendar.add_parts(wall, calendar_parts)
    return _localize(wall, policy.zone) + clock


def _at_time_of_day(due_local: datetime, text: str, policy: DuePolicy) -> datetime:
    try:
        since_midnight = calendar.parse_time_of_day(text)
    except ValueError:
        raise ValueError(f"dueTime must be a time of day such as \"12:00\" or \"24:00\", got {text!r}") from None
    day = due_local.astimezone(policy.zone).date()
    return _localize(datetime.combine(day, time()) + since_midnight, policy.zone)


def _localize(wall: datetime, zone: tzinfo) -> datetime:
    """The UTC instant of a local wall-clock time (one skipped by a DST change moves an hour on)."""
    return wall.replace(tzinfo=zone).astimezone(timezone.utc)
