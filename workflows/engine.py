"""Facade over SpiffWorkflow: start, step, complete, timers, messages, (de)serialise.

Nothing outside this module and its companions (engine_views, engine_failures, engine_repair,
engine_migration) touches a `BpmnWorkflow`. Every operation runs at an
injected time, turns whatever SpiffWorkflow raises into an `EngineFailure` naming the
element, prunes finished history (see pruning.py) and refuses to leave an active case
with nothing to do (`StalledCase`).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.util.task import TaskState

from .clock import running_at
from .engine_failures import engine_failure
from .engine_repair import MoveTarget, Token, move, move_targets, run_skipping, tokens, update_data
from .engine_views import (
    ElementMarks,
    ReadyTask,
    SentMessage,
    WaitingMessage,
    WaitingTimer,
    element_marks,
    element_name_of,
    event_subprocess_starts,
    flatten_correlations,
    plain_payload,
    reached_elements,
    ready_task,
    record_writes,
    shifted_event_value,
    timer_due_at,
    waiting_definitions,
)
from .errors import CaseworkError, Conflict, NotFound, StalledCase
from .pruning import prune_history
from .scripting import make_script_engine
from .serialization import CaseSerializer


class Engine:
    """Runs cases of parsed process bundles (see catalog.ProcessBundle)."""

    def __init__(self, *, script_time_limit: float = 1.0, trace_elements: bool = False):
        self.serializer = CaseSerializer()
        self.script_engine = make_script_engine(time_limit_seconds=script_time_limit)
        # Process tests measure which flow nodes they reach; the service does not pay for it.
        self.trace_elements = trace_elements

    def start(self, bundle, *, data: dict[str, Any], now: datetime) -> "CaseRun":
        """Start a new case of the bundle's process and run it to its first wait."""
        run = CaseRun(self, bundle, BpmnWorkflow(bundle.spec, bundle.subprocess_specs, script_engine=self.script_engine))
        run.message_waits_at_load = []  # a new case has no rows yet
        with run.operation(now, "start"):
            for task in run.workflow.get_tasks(state=TaskState.READY):
                task.data.update(data)
            run.workflow.do_engine_steps()
        return run

    def resume(self, bundle, state: str) -> "CaseRun":
        """Load a stored case to act on it."""
        workflow = self.serializer.loads(state, bundle.spec, bundle.subprocess_specs)
        workflow.script_engine = self.script_engine
        run = CaseRun(self, bundle, workflow)
        run.message_waits_at_load = run.waiting_messages()
        return run


class CaseRun:
    """One loaded case: act on it, then read its derived state and serialise it."""

    def __init__(self, engine: Engine, bundle, workflow: BpmnWorkflow):
        self.engine = engine
        self.bundle = bundle
        self.workflow = workflow
        self.sent_messages: list[SentMessage] = []
        # When the engine traces them: (process id, element id) of every flow node reached,
        # and (process id, source id, target id) of every sequence flow a token took.
        self.reached: set[tuple[str, ...]] = set()
        # Every value a step of the case wrote during this run, the latest write last (see _record_writes).
        self.written: dict[str, Any] = {}
        # The named messages the case waited for when it was loaded (None: not known).
        self.message_waits_at_load: list[WaitingMessage] | None = None
        # Diagram file -> elements completed during this run, noted before history is pruned.
        self.elements_done: dict[str, set[str]] = {}
        # A supervisor's retry may pass over the step that failed (see skip_failed_step).
        self.skip_element: str | None = None
        self.skipped: list[str] = []
        # The waiting timers this run fired (only fire_due_timers fires one: see clock.running_at).
        self.fired_timer_refs: set[str] = set()

    # -- actions -----------------------------------------------------------------
    def complete_task(self, task_ref: str, data: dict[str, Any], *, now: datetime) -> None:
        """Complete a ready human task with the submitted data and run on."""
        task = self._ready_human_task(task_ref)
        with self.operation(now, "task"):
            task.data.update(data)
            task.run()
            self._engine_steps()

    def fire_due_timers(self, *, now: datetime) -> list[WaitingTimer]:
        """Fire every timer due at `now` and run on; return the timers that fired."""
        due = [t for t in self.waiting_timers() if t.due_at is not None and t.due_at <= now]
        if not due:
            return []
        with self.operation(now, "timer"):
            self.workflow.refresh_timers()
            self._engine_steps()
        still_waiting = {(t.task_ref, t.due_at) for t in self.waiting_timers()}
        fired = [t for t in due if (t.task_ref, t.due_at) not in still_waiting]
        self.fired_timer_refs.update(t.task_ref for t in fired)
        return fired

    def deliver_message(self, name: str, payload: dict[str, Any], *, now: datetime) -> None:
        """Deliver a named message with its payload to this case and run on."""
        waiting = [ed for _, ed, _ in waiting_definitions(self.workflow, MessageEventDefinition) if ed.name == name]
        # A message may also start an event sub-process the case offers (a new request, an ad-hoc step).
        waiting += [ed for _, ed in event_subprocess_starts(self.bundle, completed=self.completed) if ed.name == name]
        if not waiting:
            raise NotFound(f"This case is not waiting for a message named '{name}'.")
        definition = waiting[0]
        with self.operation(now, "message"):
            correlations = definition.calculate_correlations(
                self.workflow.script_engine, definition.correlation_properties, payload
            ) if definition.correlation_properties else {}
            self.workflow.send_event(BpmnEvent(definition, payload, correlations))
            self._engine_steps()

    def shift_timers(self, delta: timedelta) -> None:
        """Move every waiting timer's due time on by `delta`, cycles included (a case resumed after a pause).

        A timer is due when its stored moment passes (see timers.py), so moving the moment
        is all it takes; nothing runs, and the moved moments are serialised with the case.
        """
        shifted = set()
        for task, definition, _ in waiting_definitions(self.workflow, TimerEventDefinition):
            # An event-based gateway keeps one stored moment for all the timers after it.
            if task.id in shifted:
                continue
            value = shifted_event_value(task._get_internal_data("event_value"), definition, delta)
            if value is not None:
                task._set_internal_data(event_value=value)
                shifted.add(task.id)

    # -- repairs (a supervisor's) -------------------------------------------------
    def correct_data(self, corrections: dict[str, Any], *, now: datetime) -> None:
        """Write corrected values where the case's next steps read them; nothing runs."""
        with self.operation(now, "data", check_stall=False):
            update_data(self._all_tasks(), corrections)
        self.written.update(corrections)

    def skip_failed_step(self, element_id: str) -> None:
        """In the next action, complete `element_id` without its work if it fails again."""
        self.skip_element = element_id

    def tokens(self) -> list[Token]:
        return tokens(self._all_tasks())

    def move_targets(self, task_ref: str) -> list[MoveTarget]:
        return move_targets(self._token(task_ref))

    def move_token(self, task_ref: str, target_id: str, *, now: datetime) -> None:
        """Cancel the token at `task_ref` and start its process again at `target_id`, then run on."""
        task = self._token(task_ref)
        with self.operation(now, "move"):
            move(task, target_id)
            self._engine_steps()

    def cancel(self, *, now: datetime) -> None:
        """Cancel the case: every unfinished task is cancelled."""
        with self.operation(now, "cancel", check_stall=False):
            self.workflow.cancel()

    # -- derived state -----------------------------------------------------------
    @property
    def completed(self) -> bool:
        """Whether every task has finished.

        Not `BpmnWorkflow.is_completed()`: it walks the tree with a depth limit and
        reports a deep, still-running case as completed.
        """
        return all(task.has_state(TaskState.FINISHED_MASK) for task in self._all_tasks())

    def ready_tasks(self) -> list[ReadyTask]:
        """Return the human tasks ready for a person."""
        return [
            ready_task(task)
            for task in self._all_tasks()
            if task.state == TaskState.READY and task.task_spec.manual
        ]

    def element_marks(self) -> dict[str, ElementMarks]:
        """What each diagram element is doing (completed, active, waiting), by diagram file."""
        return element_marks((self.workflow, *self.workflow.subprocesses.values()))

    def waiting_timers(self) -> list[WaitingTimer]:
        return [
            WaitingTimer(str(task.id), element_id, timer_due_at(task, ed))
            for task, ed, element_id in waiting_definitions(self.workflow, TimerEventDefinition)
        ]

    def waiting_messages(self) -> list[WaitingMessage]:
        """The messages the case waits for, each with the correlation of its own (sub)process."""
        case_wide = flatten_correlations(self.workflow.correlations)
        return [
            WaitingMessage(str(task.id), element_id, ed.name,
                           {**case_wide, **flatten_correlations(getattr(task.workflow, "correlations", {}))})
            for task, ed, element_id in waiting_definitions(self.workflow, MessageEventDefinition)
        ] + [
            WaitingMessage(str(self.workflow.task_tree.id), element_id, ed.name, case_wide)
            for element_id, ed in event_subprocess_starts(self.bundle, completed=self.completed)
        ]

    def data(self) -> dict[str, Any]:
        """Return the case's current data: process data overlaid with every open task's data."""
        merged = dict(self.workflow.data)
        for task in self._all_tasks():
            if task.has_state(TaskState.READY | TaskState.WAITING | TaskState.STARTED):
                merged.update(task.data)
        merged.pop("data_objects", None)
        return merged

    def task_data(self, task_ref: str) -> dict[str, Any]:
        return dict(self._task(task_ref).data)

    def serialize(self) -> str:
        return self.engine.serializer.dumps(self.workflow)

    # -- internals ---------------------------------------------------------------
    @contextmanager
    def operation(self, now: datetime, kind: str, *, check_stall: bool = True) -> Iterator[None]:
        """Run engine work at `now`; translate failures; record what steps wrote; prune; refuse a stall."""
        finished_before = {task.id for task in self._all_tasks() if task.state == TaskState.COMPLETED}
        with running_at(now, fire_waiting_timers=kind == "timer"):
            try:
                yield
            except CaseworkError:
                raise
            except Exception as err:
                raise engine_failure(err, kind) from err
        self.sent_messages.extend(
            SentMessage(event.event_definition.name, plain_payload(event.payload)) for event in self.workflow.get_events()
        )
        if self.engine.trace_elements:
            self.reached |= reached_elements(self.workflow)
        record_writes(self._all_tasks(), finished_before, self.written)
        for path, marks in self.element_marks().items():
            self.elements_done.setdefault(path, set()).update(marks.completed)
        prune_history(self.workflow)
        if check_stall:
            self._refuse_stall()

    def _refuse_stall(self) -> None:
        if self.completed or self.workflow.event_manager.tasks:
            return
        if any(task.state == TaskState.READY and task.task_spec.manual for task in self._all_tasks()):
            return
        raise StalledCase(
            "The case is active but has no ready task and nothing to wait for: "
            "the diagram would leave it stuck here.",
            kind="stalled",
        )

    def _all_tasks(self) -> Iterator:
        yield from self.workflow.tasks.values()
        for subprocess in self.workflow.subprocesses.values():
            yield from subprocess.tasks.values()

    def _engine_steps(self) -> None:
        self.skipped += run_skipping(self.workflow.do_engine_steps, self._all_tasks, self.skip_element)

    def _token(self, task_ref: str):
        task = self._task(task_ref)
        if not tokens([task]):
            raise Conflict(f"The case has no token at '{element_name_of(task.task_spec)}' to move.")
        return task

    def _task(self, task_ref: str):
        try:
            task = self.workflow.get_task_from_id(UUID(task_ref))
        except (ValueError, WorkflowException):
            task = None
        if task is None:
            raise NotFound(f"Task {task_ref} is not open in this case (it has finished, or never belonged to it).")
        return task

    def _ready_human_task(self, task_ref: str):
        task = self._task(task_ref)
        if not task.task_spec.manual:
            raise Conflict(f"Task '{element_name_of(task.task_spec)}' is not a human task.")
        if task.state != TaskState.READY:
            raise Conflict(
                f"Task '{element_name_of(task.task_spec)}' is {TaskState.get_name(task.state).lower()}, not ready."
            )
        return task


__all__ = ["CaseRun", "Engine", "ReadyTask", "SentMessage", "WaitingMessage", "WaitingTimer"]
