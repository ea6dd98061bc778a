"""Repairs a supervisor makes to a running case: correct its data, skip a failed step, move a token.

Camunda calls the last one process-instance modification: cancel the token where it
stands and start the diagram again at another element of the same (sub)process. Only
the facade (engine.py) calls these; the rest of the core sees the plain views below.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent, EventBasedGateway
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.util.task import TaskState

from .engine_views import element_id_of, element_name_of
from .errors import Conflict, NotFound

# Failed steps that can be passed over: an activity that produces data. A gateway decides
# where the case goes and an event waits or signals: skipping one has no meaning (move
# the token instead).
_SKIPPABLE = ("ScriptTask", "BusinessRuleTask", "ServiceTask", "SendTask", "ManualTask", "Task")


@dataclass(frozen=True)
class Token:
    """Where the case stands: a ready task, a wait, or a running call activity a supervisor may move."""

    task_ref: str
    element_id: str
    name: str
    process_id: str
    state: str  # ready, waiting, running


@dataclass(frozen=True)
class MoveTarget:
    """An element of the token's own (sub)process the token may be moved to."""

    element_id: str
    name: str
    kind: str


def tokens(tasks: Iterable) -> list[Token]:
    """The tokens of a case, from all its engine tasks, in a stable order."""
    found = []
    for task in tasks:
        state = _token_state(task)
        if state is None:
            continue
        found.append(Token(str(task.id), element_id_of(task.task_spec), element_name_of(task.task_spec),
                           task.workflow.spec.name, state))
    return sorted(found, key=lambda token: (token.process_id, token.name, token.task_ref))


def _token_state(task) -> str | None:
    spec = task.task_spec
    if spec.bpmn_id is None or isinstance(spec, (BoundaryEvent, StartEvent)):
        return None  # the engine's own bookkeeping, or a wait that belongs to another token
    if task.state == TaskState.READY:
        return "ready"
    if task.state == TaskState.WAITING and not isinstance(spec, Join):
        return "waiting"
    if task.state == TaskState.STARTED and isinstance(spec, SubWorkflowTask):
        return "running"
    return None


def move_targets(task) -> list[MoveTarget]:
    """The elements of the token's (sub)process it may move to: not starts, boundary events or joins."""
    targets = []
    for spec in task.workflow.spec.task_specs.values():
        if spec.bpmn_id is None or spec is task.task_spec or not _enterable(spec):
            continue
        targets.append(MoveTarget(spec.bpmn_id, element_name_of(spec), _kind(spec)))
    return sorted(targets, key=lambda target: (target.name.lower(), target.element_id))


def _enterable(spec) -> bool:
    if isinstance(spec, (StartEvent, BoundaryEvent)):
        return False
    # An event after an event-based gateway waits through the gateway: entered alone it would pass straight on.
    if any(isinstance(source, EventBasedGateway) for source in spec.inputs):
        return False
    # A join waits for tokens on several incoming flows: entering it with one would wait forever.
    return not (isinstance(spec, Join) and len(spec.inputs) > 1)


def _kind(spec) -> str:
    name = type(spec).__name__
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()
    return words.replace("sub workflow", "sub-process")


def move(task, target_id: str) -> None:
    """Cancel the token at `task` and start its (sub)process again at `target_id` (not yet run)."""
    specs = {element_id_of(spec): spec for spec in task.workflow.spec.task_specs.values() if spec.bpmn_id}
    target = specs.get(target_id)
    if target is None:
        raise NotFound(
            f"'{target_id}' is not an element of '{task.workflow.spec.name}', the process the token at "
            f"'{element_name_of(task.task_spec)}' is in; a token moves within its own process."
        )
    if target is task.task_spec or not _enterable(target):
        raise Conflict(f"The token cannot be moved to '{element_name_of(target)}' ({_kind(target)}): "
                       "choose a task, an event that waits, or the gateway after a join.")
    # A task with boundary events is entered through their split, so its timers and messages are armed again.
    entry = next((spec for spec in target.inputs if isinstance(spec, BoundaryEventSplit)), target)
    # Likewise the token leaves through the split: its boundary events stop waiting with it.
    leaving = task.parent if isinstance(task.parent.task_spec, BoundaryEventSplit) else task
    anchor = leaving.parent
    data = deepcopy(task.data)
    leaving.cancel()
    moved = anchor._add_child(entry, TaskState.FUTURE)
    # As SpiffWorkflow's own reset does: lay out the branch ahead, then let the element decide if it is ready.
    entry._predict(moved, mask=TaskState.PREDICTED_MASK | TaskState.FUTURE)
    entry._update(moved)
    # The token's own data, not the older copy its new parent holds.
    moved.data = data
    if moved.state == TaskState.FUTURE:
        raise Conflict(f"The case cannot start again at '{element_name_of(target)}': the engine did not make it ready.")


def update_data(tasks: Iterable, corrections: dict[str, Any]) -> None:
    """Write corrected values into every unfinished task's data, where the next steps read them."""
    for task in tasks:
        if task.has_state(TaskState.READY | TaskState.WAITING | TaskState.STARTED):
            task.data.update(deepcopy(corrections))
            # A waiting event copies its parent's data again each time it is checked (and when it fires).
            if task.state == TaskState.WAITING and task.parent is not None:
                task.parent.data.update(deepcopy(corrections))


def run_skipping(do_engine_steps: Callable[[], None], all_tasks: Callable[[], Iterable], skip: str | None) -> list[str]:
    """Run the engine; if the step `skip` fails, complete it without its work and run on. Return what was skipped."""
    skipped: list[str] = []
    while True:
        try:
            do_engine_steps()
            return skipped
        except Exception:
            failed = [task for task in all_tasks() if task.state == TaskState.ERROR
                      and element_id_of(task.task_spec) == skip]
            if skip is None or skipped or not failed:
                raise
            spec = failed[0].task_spec
            if type(spec).__name__ not in _SKIPPABLE:
                raise Conflict(
                    f"'{element_name_of(spec)}' is a {_kind(spec)}, which cannot be skipped: "
                    "move the case's token to the step it should take instead."
                ) from None
            failed[0].complete()
            skipped.append(skip)


__all__ = ["MoveTarget", "Token", "move", "move_targets", "run_skipping", "tokens", "update_data"]
