"""What every KPI shares: the period, the rows read for it, the figures it yields, and the arithmetic."""
from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

from .. import calendar
from ..errors import InvalidInput

DEFAULT_DAYS = 30
MAX_DAYS = 731
# Days a period may name: anything outside is a typo, and near date.min or date.max the
# period's midnights cannot even be computed.
EARLIEST_DAY, LATEST_DAY = date(1900, 1, 1), date(2999, 12, 31)
ALL_STAYS = "All stays"


@dataclass(frozen=True)
class Period:
    """Whole days on the organisation's calendar, first and last included."""

    first_day: date
    last_day: date

    @classmethod
    def parse(cls, *, first: str, last: str, today: date) -> Period:
        """Read a period from YYYY-MM-DD text; blank means the 30 days ending today. Refuse bad dates by field."""
        problems: dict[str, list[str]] = {}
        days = {}
        for name, text in (("from", first), ("to", last)):
            text = (text or "").strip()
            try:
                days[name] = date.fromisoformat(text) if text else None
            except ValueError:
                problems[name] = [f"Give a date as YYYY-MM-DD, e.g. {today.isoformat()}, not {text[:20]!r}."]
            if days.get(name) and not EARLIEST_DAY <= days[name] <= LATEST_DAY:
                problems[name] = [f"Give a day between {EARLIEST_DAY} and {LATEST_DAY}, not {days[name]}."]
        if not problems:
            last_day = days["to"] or today
            first_day = days["from"] or last_day - timedelta(days=DEFAULT_DAYS - 1)
            if first_day > last_day:
                problems["from"] = [f"The first day ({first_day}) must not be after the last ({last_day})."]
            elif (last_day - first_day).days + 1 > MAX_DAYS:
                problems["to"] = [f"Choose a period of at most {MAX_DAYS} days."]
        if problems:
            raise InvalidInput("The KPIs cannot be shown for that period.", problems)
        return cls(first_day, last_day)

    def start(self, zone: tzinfo) -> datetime:
        """The period's first moment (local midnight), in UTC."""
        return _midnight(self.first_day, zone)

    def end(self, zone: tzinfo) -> datetime:
        """The moment just after the period (local midnight after its last day), in UTC."""
        return _midnight(self.last_day + timedelta(days=1), zone)

    def holds(self, day: date | None) -> bool:
        return day is not None and self.first_day <= day <= self.last_day


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(timezone.utc)


@dataclass(frozen=True)
class CaseFacts:
    """The case-data values a setting's KPIs read, of one case."""

    case_id: int
    setting: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Submission:
    """The data a person submitted when completing a task (from the audit trail)."""

    case_id: int
    element_id: str
    at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class TaskFacts:
    """A completed task as the task KPIs see it."""

    setting: str
    element_id: str
    title: str
    created_at: datetime
    due_at: datetime | None
    completed_at: datetime
    completed_by: str | None
    adhoc: bool = False


@dataclass
class SettingFacts:
    """Everything read for one setting's KPIs over one period."""

    cases: list[CaseFacts] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    tasks: list[TaskFacts] = field(default_factory=list)
    open_overdue: dict[str, int] = field(default_factory=dict)  # assignee -> open tasks due before the period ended


@dataclass(frozen=True)
class Figure:
    """One number of a KPI: a measure of one group (all, a reason, a task type, a person)."""

    group: str
    measure: str
    value: float | None  # None: nothing to measure in this group
    unit: str
    numerator: float | None = None
    denominator: float | None = None


@dataclass(frozen=True)
class Kpi:
    """A KPI of one setting: its figures (groups x measures), how it is counted, and what its chart shows."""

    key: str
    title: str
    counted: str  # "How this is counted", in plain words
    population: int  # how many cases, stays, days or tasks it counted
    figures: list[Figure]
    chart: str  # the measure charted, one bar per group
    target: float | None = None  # drawn as a line on the chart
    unit: str = "cases"  # what `population` counts
    total: str | None = None  # a group adding up the others: in the table, not a bar of the chart
    empty: str = "No cases in this period"

    @property
    def measures(self) -> list[str]:
        return list(dict.fromkeys(figure.measure for figure in self.figures))

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(figure.group for figure in self.figures))

    def cell(self, group: str, measure: str) -> Figure | None:
        return next((f for f in self.figures if f.group == group and f.measure == measure), None)

    def charted(self) -> list[Figure]:
        """The figures the chart shows: the charted measure of every group that has a value."""
        return [f for f in self.figures if f.measure == self.chart and f.value is not None and f.group != self.total]


def share(group: str, measure: str, hits: int, total: int) -> Figure:
    """A percentage: `hits` of `total`."""
    return Figure(group, measure, 100 * hits / total if total else None, "%", hits, total)


def count(group: str, measure: str, amount: float, unit: str) -> Figure:
    return Figure(group, measure, amount, unit)


def average(group: str, measure: str, values: Sequence[float], unit: str) -> Figure:
    """The mean of `values`, with their sum and number."""
    return Figure(group, measure, sum(values) / len(values) if values else None, unit, sum(values), len(values))


def middle(group: str, measure: str, values: Sequence[float], unit: str) -> Figure:
    """The median of `values`."""
    return Figure(group, measure, statistics.median(values) if values else None, unit, None, len(values))


def grouped(pairs: Iterable[tuple[str, Any]]) -> dict[str, list[Any]]:
    """Values by group, groups in order of first appearance."""
    groups: dict[str, list[Any]] = {}
    for group, value in pairs:
        groups.setdefault(group, []).append(value)
    return groups


def moment(value: Any, zone: tzinfo) -> datetime | None:
    """An ISO 8601 value of case data as an aware datetime (a naive one is local); None if it is none."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = calendar.parse_datetime(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed


def local_day(value: Any, zone: tzinfo) -> date | None:
    """The organisation's calendar day of a datetime, or of an ISO date or date-time of case data."""
    if isinstance(value, datetime):
        return value.astimezone(zone).date()
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    found = moment(value, zone)
    return found.astimezone(zone).date() if found else None


def number(value: Any) -> float | None:
    """A number of case data (not a yes/no), or None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def entries(value: Any) -> list[dict]:
    """The mappings in a list of case data (conferences, avoidable days ...); none if it is not a list."""
    return [entry for entry in value if isinstance(entry, dict)] if isinstance(value, list) else []


def label(code: Any) -> str:
    """A code of case data as a group label: "spinal_cord_injury" -> "Spinal cord injury"."""
    return str(code).replace("_", " ").capitalize() if code else "Not recorded"


def days_between(start: datetime, end: datetime) -> float:
    return (end - start) / timedelta(days=1)


def shares(verdicts: Sequence[tuple[str, bool]], measure: str, *, every: str) -> list[Figure]:
    """The share of true verdicts of (group, verdict) pairs: in all (group `every`), then per group by name."""
    figures = [share(every, measure, sum(hit for _, hit in verdicts), len(verdicts))]
    return figures + [share(group, measure, sum(hits), len(hits)) for group, hits in sorted(grouped(verdicts).items())]


def on_time(key: str, title: str, tasks: Sequence[TaskFacts], types: dict[str, str], *, every: str,
            unit: str) -> Kpi:
    """The share of the tasks of these types (element id -> label) completed by their due time, in all and per type."""
    figures = shares([(types[task.element_id], task.completed_at <= task.due_at) for task in tasks
                      if task.element_id in types and task.due_at is not None], "On time", every=every)
    return Kpi(key, title, f"{', '.join(types.values())}: the tasks completed in the period that had a due time. "
               "On time: completed no later than the task's due time.", int(figures[0].denominator), figures,
               chart="On time", unit=unit, empty=f"No {unit} completed in this period")
