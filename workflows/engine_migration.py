"""Move one running case onto a newer version of its process.

SpiffWorkflow's own answer is `diff_workflow` + `migrate_workflow` (bpmn/util/diff.py):
align the old specs with the new ones (`SpecDiff`), point every task at its new spec,
then reset the READY and WAITING tasks so what lies ahead is predicted again. Casework
keeps the alignment and the re-prediction but not the reset: resetting a waiting timer
restarts its clock, and resetting a ready user task opens it again under a new rule.
`WorkflowDiff` is not used either: it walks the tree with SpiffWorkflow's depth-limited
iterator and fails on a spec SpecDiff did not reach; every task is visited here instead.

The rules, each refusal a `MigrationRefused` naming the element:
- The new bundle must be of the case's own process (the handler checks the case's status
  and that the version is newer).
- A failed step (a task in ERROR) must be resolved first.
- Every task the case has run or is running (ready, waiting, started, finished, and what
  hangs below a finished task) needs its element in the new version. Tasks merely
  predicted (FUTURE, LIKELY, MAYBE below a task that holds a token) are dropped and
  predicted again from the new spec.
- A waiting timer whose definition changed (its kind or expression) is refused: its due
  time was worked out under the old one. Unchanged waiting timers keep their due time.
- A ready user task whose spec changed (due rule, form, lane ...) keeps its id, data and
  state; only its spec is swapped, so what it does next follows the new version.
- A step the case is at whose boundary events the new version adds or removes is
  refused: the events are armed when the step is entered, which has already happened.
- A join waiting for branches whose incoming flows changed is refused: it would wait for
  a branch that never comes, or go on too early.
- A (called) sub-process the case is in, or has run and still keeps, follows the same
  rules against its new spec; one the new version no longer has is refused, and so is a
  running call activity the new version points at another process.
- Afterwards the case is serialised and loaded again with the new bundle: the same tasks
  must hold the same states, and the waiting timers the same due times, or it is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import EventBasedGateway
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.util.task import TaskState

from .engine import CaseRun
from .engine_views import element_id_of, element_name_of, waiting_definitions
from .errors import CaseworkError, MigrationRefused
from .versions import (
    ElementChange,
    aligned_spec,
    changes_between,
    element_change,
    merged,
    spec_diff,
    timer_definition_changed,
)

_LIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED
_PREDICTED = TaskState.FUTURE | TaskState.PREDICTED_MASK


@dataclass
class Migrated:
    """A case loaded on its new version, with what changed at the steps it is at."""

    run: CaseRun
    changed_steps: list[ElementChange]


@dataclass
class _Plan:
    """One (sub)process of the case and the new spec of each task it keeps."""

    workflow: Any
    new_spec: Any
    targets: dict  # task id -> new task spec


def migrate(run: CaseRun, *, bundle, version: int) -> Migrated:
    """Move a loaded case onto `bundle`, version `version` of its process; `run` is used up."""
    if bundle.process_id != run.bundle.process_id:
        raise MigrationRefused(f"Version {version} is of the process '{bundle.process_id}', "
                               f"not of '{run.bundle.process_id}', which this case runs.")
    alignments: dict = {}  # the instances of a multi-instance call share their spec: align it once
    plans = [_plan(workflow, spec, version, alignments) for workflow, spec in _workflows(run, bundle, version)]
    targets = {task_id: spec for plan in plans for task_id, spec in plan.targets.items()}
    _refuse_changed_timers(run, targets, version)
    changed = _changed_steps(plans, old=run.bundle, new=bundle)
    live_before = {task.id: (targets[task.id].name, task.state) for plan in plans
                   for task in plan.workflow.tasks.values() if task.has_state(_LIVE)}
    timers_before = sorted((timer.task_ref, timer.due_at) for timer in run.waiting_timers())
    try:
        for plan in plans:
            _apply(plan)
        run.workflow.subprocess_specs = bundle.subprocess_specs
        moved = run.engine.resume(bundle, run.serialize())
    except CaseworkError as err:
        raise MigrationRefused(f"The case cannot be loaded on version {version}: {err}") from err
    except Exception as err:  # SpiffWorkflow raises whatever it meets in a tree laid out for other specs
        raise MigrationRefused(f"The case cannot be moved onto version {version} "
                               f"({type(err).__name__}: {err}).") from err
    live_after = {task.id: (task.task_spec.name, task.state) for task in _tasks(moved.workflow)
                  if task.has_state(_LIVE)}
    timers_after = sorted((timer.task_ref, timer.due_at) for timer in moved.waiting_timers())
    if live_after != live_before or timers_after != timers_before:
        raise MigrationRefused(f"On version {version} the case would not stand where it stands now "
                               "(its open steps or waiting timers would differ); move its token first.")
    return Migrated(moved, changed)


def _workflows(run: CaseRun, bundle, version: int) -> list[tuple[Any, Any]]:
    """Each (sub)process of the case with its spec in the new bundle."""
    pairs = [(run.workflow, bundle.spec)]
    for task_id, subprocess in run.workflow.subprocesses.items():
        new_spec = bundle.subprocess_specs.get(subprocess.spec.name)
        if new_spec is None:
            caller = next((task for task in _tasks(run.workflow) if task.id == task_id), None)
            where = _named(caller.task_spec) if caller is not None else f"'{subprocess.spec.name}'"
            raise MigrationRefused(f"The case has reached {where}, whose process '{subprocess.spec.name}' "
                                   f"version {version} no longer has.")
        pairs.append((subprocess, new_spec))
    return pairs


def _plan(workflow, new_spec, version: int, alignments: dict) -> _Plan:
    """Find each kept task's new spec; refuse what cannot move. Nothing is changed yet."""
    key = (id(workflow.spec), id(new_spec))
    if key not in alignments:
        alignments[key] = spec_diff(workflow.spec, new_spec)
    alignment = alignments[key]
    targets = {}
    for task in workflow.tasks.values():
        if task.state == TaskState.ERROR:
            raise MigrationRefused(f"The step {_named(task.task_spec)} failed: resolve the failed step first.")
        if _predicted(task):
            continue
        target = aligned_spec(alignment, task.task_spec, new_spec)
        if target is None:
            raise MigrationRefused(_removed(task.task_spec, version))
        if task.has_state(_LIVE):
            _refuse_structural_change(task, target, version)
        targets[task.id] = target
    return _Plan(workflow, new_spec, targets)


def _predicted(task) -> bool:
    """Whether the task only predicts the way ahead of a task that holds a token."""
    parent = task.parent
    return (task.has_state(_PREDICTED) and not task.triggered and parent is not None
            and (parent.has_state(_LIVE) or _predicted(parent)))


def _removed(spec, version: int) -> str:
    if isinstance(spec, BoundaryEventSplit) or not spec.bpmn_id:
        owner = spec.name.rsplit(".", 1)[0]
        return (f"The case is at '{owner}', whose boundary events version {version} takes away; "
                "finish or move that step first.")
    return f"The case has reached {_named(spec)}, which version {version} removes."


def _refuse_structural_change(task, target, version: int) -> None:
    spec = task.task_spec
    if _boundary_events(spec) != _boundary_events(target):
        raise MigrationRefused(f"The case is at {_named(spec)}, whose boundary events version {version} changes; "
                               "they are set when the step starts: finish or move that step first.")
    if task.state == TaskState.WAITING and isinstance(spec, Join) and spec.bpmn_id and (
            sorted(s.name for s in spec.inputs) != sorted(s.name for s in target.inputs)):
        raise MigrationRefused(f"The case is waiting at the join {_named(spec)}, whose incoming flows version "
                               f"{version} changes; it would wait for the wrong branches: "
                               "move the token past it first.")
    if isinstance(spec, SubWorkflowTask) and getattr(spec, "spec", None) != getattr(target, "spec", None):
        raise MigrationRefused(f"The case is inside {_named(spec)}, which version {version} makes call "
                               f"'{getattr(target, 'spec', None)}' instead; let the call finish first.")


def _boundary_events(spec) -> list[str]:
    splits = [source for source in spec.inputs if isinstance(source, BoundaryEventSplit)]
    return sorted(output.name for split in splits for output in split.outputs if output is not spec)


def _refuse_changed_timers(run: CaseRun, targets: dict, version: int) -> None:
    for task, definition, element_id in waiting_definitions(run.workflow, TimerEventDefinition):
        target = targets[task.id]
        if timer_definition_changed(definition, _new_definition(task.task_spec, target, definition, element_id)):
            element = next((s for s in task.task_spec.outputs if element_id_of(s) == element_id), task.task_spec) \
                if isinstance(task.task_spec, EventBasedGateway) else task.task_spec
            raise MigrationRefused(
                f"The case is waiting at the timer {_named(element)}, whose timer version {version} changes; "
                "the running timer cannot take the new definition: move the token or let the timer fire first.")


def _new_definition(old_spec, target, definition, element_id: str):
    """The new version's definition of the timer `definition` of the old spec (None if it has none)."""
    new_definition = getattr(target, "event_definition", None)
    inner = getattr(new_definition, "event_definitions", None)
    if isinstance(old_spec, EventBasedGateway):
        if not isinstance(target, EventBasedGateway):
            return None
        index = next((i for i, s in enumerate(target.outputs) if element_id_of(s) == element_id), None)
        return inner[index] if index is not None and index < len(inner) else None
    if inner is not None:
        old_inner = old_spec.event_definition.event_definitions
        index = old_inner.index(definition)
        return inner[index] if index < len(inner) else None
    return new_definition


def _changed_steps(plans: list[_Plan], *, old, new) -> list[ElementChange]:
    found: list[ElementChange] = []
    for plan in plans:
        for task in plan.workflow.tasks.values():
            if not task.has_state(_LIVE) or not task.task_spec.bpmn_id:
                continue
            target = plan.targets[task.id]
            changes = changes_between(task.task_spec, target, old=old, new=new)
            if changes:
                found.append(element_change(target, changes))
    return merged(found)


def _apply(plan: _Plan) -> None:
    """Swap every kept task's spec, drop the predicted ones, and predict the way ahead from the new spec."""
    workflow = plan.workflow
    workflow.spec = plan.new_spec
    tokens = [task for task in workflow.tasks.values() if task.has_state(_LIVE)]
    for task in list(workflow.tasks.values()):
        if task.id in plan.targets:
            task.task_spec = plan.targets[task.id]
    for task in tokens:
        for child in task.children:
            if child.has_state(_PREDICTED) and not child.triggered:
                workflow._remove_task(child.id)
        task.task_spec._predict_hook(task)
        for child in task.children:
            if child.has_state(_PREDICTED) and not child.triggered:
                child.task_spec._predict(child, mask=_PREDICTED)
    if workflow.last_task is not None and workflow.last_task.id not in workflow.tasks:
        workflow.last_task = None


def _tasks(workflow):
    yield from workflow.tasks.values()
    for subprocess in workflow.subprocesses.values():
        yield from subprocess.tasks.values()


def _named(spec) -> str:
    return f"'{element_name_of(spec)}' ({element_id_of(spec)})"
