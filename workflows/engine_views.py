"""Plain views of a running case's engine tasks: what is ready, waiting, sent, reached and written.

The facade (engine.py) hands these to the rest of the core, which never sees a
SpiffWorkflow task.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import EventBasedGateway
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.util.task import TaskState


@dataclass(frozen=True)
class ReadyTask:
    """A user or manual task waiting for a person."""

    task_ref: str
    element_id: str
    title: str
    lane: str | None
    form_ref: str | None
    ui_form_ref: str | None
    instructions: str
    properties: dict[str, str] = field(default_factory=dict)
    boundary_due_at: datetime | None = None


@dataclass(frozen=True)
class WaitingTimer:
    task_ref: str
    element_id: str
    due_at: datetime | None


@dataclass(frozen=True)
class SentMessage:
    """A message the case threw that nothing inside it caught: it is for an outside party."""

    name: str
    payload: Any


@dataclass(frozen=True)
class WaitingMessage:
    task_ref: str
    element_id: str
    name: str
    correlation: dict[str, Any]


def element_id_of(spec) -> str:
    """The diagram's id of the element a task spec stands for."""
    return spec.bpmn_id or spec.name


def element_name_of(spec) -> str:
    """The element's name as the diagram shows it, else its id."""
    return spec.bpmn_name or spec.bpmn_id or spec.name


def ready_task(task) -> ReadyTask:
    spec = task.task_spec
    extensions = getattr(spec, "extensions", None) or {}
    properties = dict(extensions.get("properties") or {})
    instructions = extensions.get("instructionsForEndUser") or spec.documentation or ""
    return ReadyTask(
        task_ref=str(task.id),
        element_id=element_id_of(spec),
        title=element_name_of(spec),
        lane=spec.lane,
        form_ref=properties.get("formJsonSchemaFilename"),
        ui_form_ref=properties.get("formUiSchemaFilename"),
        instructions=instructions,
        properties=properties,
        boundary_due_at=boundary_due_at_of(task),
    )


def boundary_due_at_of(task) -> datetime | None:
    """When the first timer on the task's boundary fires, if it has one."""
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return None
    due = []
    for sibling in parent.children:
        definition = getattr(sibling.task_spec, "event_definition", None)
        if sibling is task or definition is None:
            continue
        inner = definition.event_definitions if isinstance(definition, MultipleEventDefinition) else [definition]
        due.extend(timer_due_at(sibling, ed) for ed in inner if isinstance(ed, TimerEventDefinition))
    due = [moment for moment in due if moment is not None]
    return min(due) if due else None


def plain_payload(payload: Any) -> Any:
    return dict(payload) if isinstance(payload, dict) else payload


def timer_due_at(task, definition) -> datetime | None:
    value = task._get_internal_data("event_value")
    if value is None:
        return None
    try:
        if isinstance(definition, CycleTimerEventDefinition):
            return TimerEventDefinition.get_datetime(value["next"]) if value.get("cycles") != 0 else None
        parsed = TimerEventDefinition.parse_time_or_duration(value) if isinstance(value, str) else None
        return parsed if isinstance(parsed, datetime) else None
    except Exception:
        return None


def shifted_event_value(value: Any, definition, delta: timedelta) -> Any:
    """A waiting timer's stored due time moved on by `delta`; None when it holds no moment to move.

    The value has the shape SpiffWorkflow (and workflows/timers.py) keeps in the task's
    internal data: ISO text for date and duration timers, {"cycles", "next", "duration"} for cycles.
    """
    try:
        if isinstance(definition, CycleTimerEventDefinition):
            if not isinstance(value, dict) or value.get("cycles") == 0 or "next" not in value:
                return None
            return {**value, "next": (TimerEventDefinition.get_datetime(value["next"]) + delta).isoformat()}
        moment = TimerEventDefinition.parse_time_or_duration(value) if isinstance(value, str) else None
    except Exception:  # SpiffWorkflow's parsers raise bare Exception("Invalid duration")
        return None
    return (moment + delta).isoformat() if isinstance(moment, datetime) else None


def flatten_correlations(correlations: dict) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for values in correlations.values():
        if isinstance(values, dict):
            flat.update(values)
    return flat


# A token has come to these tasks (a waiting join or timer has been reached through its flow).
_TOKEN_ARRIVED = TaskState.COMPLETED | TaskState.READY | TaskState.STARTED | TaskState.WAITING


def reached_elements(top) -> set[tuple[str, ...]]:
    """(process, element) for each flow node reached, and (process, source, target) for each flow taken."""
    reached = set()
    for workflow in (top, *top.subprocesses.values()):
        for task in workflow.tasks.values():
            spec = task.task_spec
            # A join cancels the instances of branches that arrived before the one that fires it.
            arrived_at_join = (task.state == TaskState.CANCELLED and isinstance(spec, Join)
                               and task.parent is not None and task.parent.state == TaskState.COMPLETED)
            if not spec.bpmn_id or not (task.has_state(_TOKEN_ARRIVED) or arrived_at_join):
                continue
            if task.state not in (TaskState.WAITING, TaskState.CANCELLED):
                reached.add((spec._wf_spec.name, spec.bpmn_id))
            source = task.parent
            while source is not None and not source.task_spec.bpmn_id:
                source = source.parent
            if source is not None:
                reached.add((spec._wf_spec.name, source.task_spec.bpmn_id, spec.bpmn_id))
    return reached


def record_writes(tasks, finished_before: set, written: dict[str, Any]) -> None:
    """Keep the values each step completed in this operation changed, in the order the steps finished.

    Each parallel branch and sub-process carries its own copy of the data, so no single
    task holds the case's latest values: a branch's copy can be stale, and an interrupted
    sub-process takes its copy with it. What each step itself wrote is the case record.
    Joins only re-merge branch copies, so they write nothing of their own.
    """
    done = [task for task in tasks if task.state == TaskState.COMPLETED
            and task.id not in finished_before and not isinstance(task.task_spec, Join)]
    for task in sorted(done, key=lambda t: t.last_state_change):
        before = task.parent.data if task.parent is not None else {}
        for key, value in task.data.items():
            if key != "data_objects" and (key not in before or before[key] != value):
                written[key] = value


@dataclass
class ElementMarks:
    """How far a case got through one diagram file: what each element of it is doing."""

    completed: set[str] = field(default_factory=set)
    active: dict[str, int] = field(default_factory=dict)  # element id -> tokens on it now
    waiting: set[str] = field(default_factory=set)  # timers, messages and boundary events armed


def element_marks(workflows) -> dict[str, ElementMarks]:
    """The marks of every diagram file the case's (sub)processes come from, by file path."""
    marks: dict[str, ElementMarks] = {}
    for workflow in workflows:
        file_marks = marks.setdefault(getattr(workflow.spec, "file", None) or workflow.spec.name, ElementMarks())
        for task in workflow.tasks.values():
            element_id = task.task_spec.bpmn_id
            if not element_id:
                continue
            if task.state in (TaskState.READY, TaskState.STARTED):
                file_marks.active[element_id] = file_marks.active.get(element_id, 0) + 1
            elif task.state == TaskState.WAITING:
                file_marks.waiting.add(element_id)
            elif task.state == TaskState.COMPLETED:
                file_marks.completed.add(element_id)
    for file_marks in marks.values():
        # An element that ran before and holds a token again (a loop) shows as what it is doing now.
        file_marks.completed -= set(file_marks.active) | file_marks.waiting
    return marks


def event_subprocess_starts(bundle, *, completed: bool) -> list[tuple[str, MessageEventDefinition]]:
    """(element id, definition) of the message start events of the case's event sub-processes.

    SpiffWorkflow starts these only in the top process, while it runs; each message starts
    a new instance (a new pre-certification request, an ad-hoc step the diagram offers).
    """
    if completed:
        return []
    specs = {spec.name: spec for spec in bundle.subprocess_specs.values()}
    found = []
    for name in getattr(bundle.spec.start, "trigger_specs", ()):
        for task_spec in getattr(specs.get(name), "task_specs", {}).values():
            definition = getattr(task_spec, "event_definition", None)
            if isinstance(task_spec, StartEvent) and isinstance(definition, MessageEventDefinition):
                found.append((element_id_of(task_spec), definition))
    return found


def waiting_definitions(workflow, kind) -> list[tuple[Any, Any, str]]:
    """(waiting task, event definition, element id) for each event of `kind` the case waits for.

    An event-based gateway waits on its following catch events' definitions: each is
    reported under that catch event's id, as the diagram shows it.
    """
    found = []
    for task in workflow.event_manager.tasks.values():
        spec = task.task_spec
        definition = spec.event_definition
        inner = definition.event_definitions if isinstance(definition, MultipleEventDefinition) else [definition]
        for index, ed in enumerate(inner):
            if isinstance(ed, kind):
                element = spec.outputs[index] if isinstance(spec, EventBasedGateway) else spec
                found.append((task, ed, element_id_of(element)))
    return found
