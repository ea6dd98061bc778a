"""The inbox's views and filters: read from the query string, turned into task queries, written back into links."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta, timezone, tzinfo

from workflows.errors import InvalidInput
from workflows.handlers.common import is_supervisor
from workflows.model import OPEN_TASK_STATUSES, User
from workflows.ports import TaskQuery, TaskSort

PAGE_SIZE = 50
VIEWS = {"mine": "My tasks", "team": "My team's queue", "all": "All open"}
DUE_CHOICES = {"overdue": "Overdue", "today": "Due today", "week": "Due this week"}
SORTS = {"due": "Due soonest", "priority": "Priority (1 first)", "created": "Oldest first"}
PRIORITIES = (1, 2, 3, 4, 5)
_LAST_MOMENT = timedelta(microseconds=1)


def query_args(filters, **changes) -> dict[str, str | int]:
    """The query string of a page's filters (a dataclass) with `changes`, leaving out what is at its default."""
    defaults = asdict(type(filters)())
    return {name: value for name, value in (asdict(filters) | changes).items() if value != defaults[name]}


@dataclass(frozen=True)
class InboxFilters:
    """What the inbox shows: a view, its filters, an order and a page."""

    view: str = "mine"
    setting: str = ""
    process: str = ""
    task: str = ""  # the task type: a user task's element id
    due: str = ""
    priority: str = ""
    q: str = ""
    sort: str = "due"
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> InboxFilters:
        """Read the filters from a query string; refuse values the page does not offer, naming each."""
        problems: dict[str, list[str]] = {}

        def choice(name: str, allowed, default: str = "") -> str:
            value = args.get(name, "").strip() or default
            if value and value not in allowed:
                problems[name] = [f"Choose one of {', '.join(map(str, allowed))}, not {value[:40]!r}."]
            return value

        def text(name: str, limit: int) -> str:
            value = args.get(name, "").strip()
            if len(value) > limit:
                problems[name] = [f"Use at most {limit} characters."]
            return value

        page_text = args.get("page", "").strip() or "1"
        if not page_text.isdigit() or not 1 <= int(page_text) <= 100_000:
            problems["page"] = [f"Give a page number from 1, not {page_text[:20]!r}."]
        filters = cls(
            view=choice("view", tuple(VIEWS), "mine"),
            setting=text("setting", 100),
            process=text("process", 255),
            task=text("task", 255),
            due=choice("due", tuple(DUE_CHOICES)),
            priority=choice("priority", tuple(str(p) for p in PRIORITIES)),
            q=text("q", 200),
            sort=choice("sort", tuple(SORTS), "due"),
            page=int(page_text) if "page" not in problems else 1,
        )
        if problems:
            raise InvalidInput("The inbox cannot show that: " + " ".join(
                f"{name}: {' '.join(messages)}" for name, messages in problems.items()), problems)
        return filters

    def args(self, **changes) -> dict[str, str | int]:
        return query_args(self, **changes)

    @property
    def filtered(self) -> bool:
        return any((self.setting, self.process, self.task, self.due, self.priority, self.q))

    def views(self, user: User, *, now: datetime, zone: tzinfo) -> dict[str, TaskQuery]:
        """The task query of each view this user has, with these filters (unpaged)."""
        common = dict(
            setting=self.setting or None, process_id=self.process or None, element_id=self.task or None,
            priority=int(self.priority) if self.priority else None, text=self.q or None,
            sort=TaskSort(self.sort), **_due_window(self.due, now=now, zone=zone),
        )
        views = {"mine": TaskQuery.my_tasks(user, **common), "team": TaskQuery.team_queue(user, **common)}
        if is_supervisor(user):
            views["all"] = TaskQuery(statuses=OPEN_TASK_STATUSES, settings=user.setting_scope, **common)
        return views


def _due_window(due: str, *, now: datetime, zone: tzinfo) -> dict[str, datetime]:
    """The due times a due filter selects: days and weeks on the organisation's local calendar."""
    if due == "overdue":
        return {"due_by": now}
    today = now.astimezone(zone).date()
    if due == "today":
        start = today
        end = today + timedelta(days=1)
    elif due == "week":
        start = today - timedelta(days=today.weekday())
        end = start + timedelta(days=7)
    else:
        return {}
    return {"due_from": _local_midnight(start, zone), "due_by": _local_midnight(end, zone) - _LAST_MOMENT}


def _local_midnight(day, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(timezone.utc)
