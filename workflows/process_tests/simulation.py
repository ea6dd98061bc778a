"""One case on a simulated clock, driven the way the service drives a real one.

Each step loads the case from its serialised state, acts, and serialises it again, so a
process test also proves the case survives storage between every action. Task data is
checked against the task's form, due times come from the same due rules as the inbox.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..derive import json_safe
from ..due_rules import DuePolicy, ready_task_window
from ..engine import CaseRun, Engine, WaitingTimer
from ..errors import NotFound
from ..forms import validate_submission

# A timer that keeps falling due without the case moving on would loop forever.
MAX_FIRINGS_PER_ADVANCE = 100_000


@dataclass
class OpenTask:
    task_ref: str
    element_id: str
    title: str
    lane: str | None
    opened_at: datetime
    due_at: datetime | None
    at_risk_at: datetime | None
    data: dict[str, Any]
    form_ref: str | None


class SimulatedCase:
    """A case of one process bundle, with its own clock."""

    def __init__(self, engine: Engine, bundle, *, now: datetime, policy: DuePolicy):
        self.engine, self.bundle, self.now, self.policy = engine, bundle, now, policy
        self.state: str | None = None
        self.open_tasks: list[OpenTask] = []
        self.timers: list[WaitingTimer] = []
        self.waiting_messages: list[str] = []
        self.sent: list[str] = []
        self.data: dict[str, Any] = {}
        self.completed = False
        self.reached: set[tuple[str, str]] = set()

    # -- actions -----------------------------------------------------------------
    def start(self, data: dict[str, Any]) -> None:
        self._settle(self.engine.start(self.bundle, data=data, now=self.now))

    def complete(self, element_id: str, data: dict[str, Any], where: dict[str, Any] | None = None) -> None:
        task = self._open_task(element_id, where or {})
        schema = self.bundle.forms.get(task.form_ref) if task.form_ref else None
        validate_submission(schema, data, form_name=task.form_ref or "form")
        run = self._resume()
        run.complete_task(task.task_ref, data, now=self.now)
        self._settle(run)

    def deliver(self, name: str, payload: dict[str, Any]) -> None:
        run = self._resume()
        run.deliver_message(name, payload, now=self.now)
        self._settle(run)

    def advance_to(self, target: datetime) -> None:
        """Move the clock to `target`, firing each timer at its own due time on the way."""
        for _ in range(MAX_FIRINGS_PER_ADVANCE):
            due = [t.due_at for t in self.timers if t.due_at is not None and t.due_at <= target]
            if not due:
                break
            self.now = max(self.now, min(due))
            run = self._resume()
            if not run.fire_due_timers(now=self.now):
                raise AssertionError(f"a timer due at {self.now.isoformat()} did not fire")
            self._settle(run)
        else:
            raise AssertionError(f"timers kept firing: more than {MAX_FIRINGS_PER_ADVANCE} before {target.isoformat()}")
        self.now = max(self.now, target)

    # -- internals ---------------------------------------------------------------
    def _resume(self) -> CaseRun:
        if self.completed:
            raise AssertionError("the case has completed; nothing more can happen to it")
        return self.engine.resume(self.bundle, self.state)

    def _settle(self, run: CaseRun) -> None:
        self.state = run.serialize()
        self.completed = run.completed
        self.data = {**self.data, **json_safe(run.written)}
        self.timers = run.waiting_timers()
        self.waiting_messages = sorted({m.name for m in run.waiting_messages()})
        self.sent.extend(message.name for message in run.sent_messages)
        self.reached |= run.reached
        known = {task.task_ref: task for task in self.open_tasks}
        self.open_tasks = []
        for ready in run.ready_tasks():
            task = known.get(ready.task_ref)
            if task is None:
                task_data = json_safe(run.task_data(ready.task_ref))
                window = ready_task_window(ready, opened_at=self.now, data=task_data, policy=self.policy)
                task = OpenTask(ready.task_ref, ready.element_id, ready.title, ready.lane, self.now,
                                window.due_at if window else None, window.at_risk_at if window else None,
                                task_data, ready.form_ref)
            self.open_tasks.append(task)

    def _open_task(self, element_id: str, where: dict[str, Any]) -> OpenTask:
        candidates = [t for t in self.open_tasks if t.element_id == element_id]
        matching = [t for t in candidates if all(same_value(t.data.get(k), v) for k, v in where.items())]
        if not matching:
            open_ids = ", ".join(t.element_id for t in self.open_tasks) or "none"
            detail = f" whose data has {where}" if where and candidates else ""
            raise NotFound(f"no open task '{element_id}'{detail}; open tasks: {open_ids}")
        return matching[0]


def same_value(actual: Any, expected: Any) -> bool:
    """Equal, comparing date-times as instants whatever their notation."""
    if actual == expected:
        return True
    if isinstance(actual, str) and isinstance(expected, str):
        try:
            return datetime.fromisoformat(actual) == datetime.fromisoformat(expected)
        except ValueError:
            return False
    if isinstance(actual, (int, float)) and isinstance(expected, (int, float)) and not isinstance(actual, bool):
        return actual == expected
    return False

