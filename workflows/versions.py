"""What changed between two deployed versions of a process, element by element, in words.

The comparison is SpiffWorkflow's `SpecDiff` (bpmn/util/diff.py) over the top process and
every sub-process and called process, with the serializer registry the engine uses, so
two specs differ exactly where their stored form would. SpecDiff names the serialized
attributes that changed; designers and supervisors read words ("due rule", "timer"),
so each attribute is translated, and an extension's properties are compared one by one.
A form's file can change while its name stays: forms are compared by content as well.
SpiffWorkflow's own specs (starts, joins, boundary splits: no `bpmn_id`) are left out.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask, StandardLoopTask
from SpiffWorkflow.bpmn.util.diff import SpecDiff

from .catalog import ProcessBundle
from .diagram_xml import FORM_SCHEMA_PROPERTY, FORM_UI_SCHEMA_PROPERTY
from .engine_views import element_name_of
from .serialization import CaseSerializer

_DUE_RULE = ("dueIn", "dueFrom", "calendar", "dueTime")
_ATTRIBUTE_WORDS = {
    "typename": "kind", "bpmn_name": "name", "bpmn_id": "id", "lane": "lane", "documentation": "documentation",
    "inputs": "incoming flows", "outputs": "outgoing flows", "script": "script", "prescript": "pre-script",
    "postscript": "post-script", "cond_task_specs": "condition", "default_task_spec": "default flow",
    "condition": "condition", "data_input_associations": "inputs", "data_output_associations": "outputs",
    "io_specification": "inputs and outputs", "data_input": "inputs", "data_output": "outputs",
    "input_item": "inputs", "output_item": "outputs", "cardinality": "number of instances",
    "decision_table": "decision", "spec": "called process", "cancel_activity": "interrupting",
    "trigger_specs": "event sub-processes", "task_spec": "repeated task", "maximum": "number of repeats",
    "test_before": "loop test", "threshold": "join threshold", "choice": "choice", "variable": "variable",
}
# Serialized attributes that follow from others, or are SpiffWorkflow's bookkeeping.
_IGNORED = {"name", "description", "lookahead", "manual", "split_task", "cancel"}
_EXTENSION_WORDS = {
    "instructionsForEndUser": "instructions", "preScript": "pre-script", "postScript": "post-script",
    "calledDecisionId": "decision", "messageVariable": "message variable",
}


@dataclass(frozen=True)
class ElementChange:
    """One diagram element added, removed or changed between two versions."""

    process_id: str
    element_id: str
    name: str
    kind: str
    file: str | None
    changes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VersionLabel:
    """Which deployment a side of a comparison is: its number, who deployed it and when."""

    version: int
    deployed_by: str
    deployed_at: datetime


@dataclass(frozen=True)
class VersionDiff:
    """The elements a newer version adds, removes and changes, each with what changed in words."""

    process_id: str
    added: list[ElementChange] = field(default_factory=list)
    removed: list[ElementChange] = field(default_factory=list)
    changed: list[ElementChange] = field(default_factory=list)
    old: VersionLabel | None = None
    new: VersionLabel | None = None

    @property
    def summary(self) -> str:
        """Say how many elements changed, were added and were removed, e.g. "2 changed, 1 added"."""
        counts = [(len(self.changed), "changed"), (len(self.added), "added"), (len(self.removed), "removed")]
        parts = [f"{count} {word}" for count, word in counts if count]
        return ", ".join(parts) if parts else "no change to the diagrams"


@lru_cache(maxsize=1)
def spec_registry():
    """The serializer registry the engine stores cases with: specs compare as they would be stored."""
    return CaseSerializer().registry


def diff_versions(*, old: ProcessBundle, new: ProcessBundle) -> VersionDiff:
    """Compare two bundles of one process: the top process and every (called) sub-process."""
    diff = VersionDiff(process_id=new.process_id)
    old_specs = {old.spec.name: old.spec, **old.subprocess_specs}
    new_specs = {new.spec.name: new.spec, **new.subprocess_specs}
    for name in _ordered(old_specs, new_specs, top=new.spec.name):
        before, after = old_specs.get(name), new_specs.get(name)
        if before is None:
            diff.added.extend(element_change(spec) for spec in _elements(after))
        elif after is None:
            diff.removed.extend(element_change(spec) for spec in _elements(before))
        else:
            _compare(before, after, old, new, diff)
    return replace(diff, added=merged(diff.added), removed=merged(diff.removed), changed=merged(diff.changed))


def merged(changes: list[ElementChange]) -> list[ElementChange]:
    """One entry per element: a multi-instance step is two specs with one id (the loop and its instance)."""
    found: dict[tuple[str, str], ElementChange] = {}
    for change in changes:
        key = (change.process_id, change.element_id)
        if key in found:
            words = found[key].changes + [word for word in change.changes if word not in found[key].changes]
            found[key] = replace(found[key], changes=words)
        else:
            found[key] = change
    return list(found.values())


def spec_diff(old_spec, new_spec) -> SpecDiff:
    """SpiffWorkflow's alignment of two versions of one process spec."""
    return SpecDiff(spec_registry(), old_spec, new_spec)


def aligned_spec(diff: SpecDiff, old_task_spec, new_process_spec):
    """The new version's spec for an old task spec; None when the new version removes it.

    SpecDiff only aligns what it reaches from the start event: anything else is matched by name.
    """
    if old_task_spec in diff.alignment:
        return diff.alignment[old_task_spec]
    return new_process_spec.task_specs.get(old_task_spec.name)


def changes_between(old_task_spec, new_task_spec, *, old: ProcessBundle | None = None,
                    new: ProcessBundle | None = None) -> list[str]:
    """What changed between two versions of one element, in words ([] when nothing did)."""
    registry = spec_registry()
    before, after = registry.convert(old_task_spec), registry.convert(new_task_spec)
    if before.get("typename") != after.get("typename"):
        return ["kind"]
    words: list[str] = []
    for key in sorted(set(before) | set(after)):
        if key in _IGNORED or before.get(key) == after.get(key):
            continue
        if key == "extensions":
            found = _extension_changes(before.get(key) or {}, after.get(key) or {})
        elif key == "event_definition":
            found = _event_changes(old_task_spec, new_task_spec)
        elif key == "bpmn_id":
            found = [f"id (was '{before.get(key)}')"]
        else:
            found = [_ATTRIBUTE_WORDS.get(key, key.replace("_", " "))]
        words.extend(word for word in found if word not in words)
    if old is not None and new is not None and "form" not in words and _form_contents_differ(
            old_task_spec, new_task_spec, old, new):
        words.append("form")
    return words


def timer_definition_changed(old_definition, new_definition) -> bool:
    """Whether a timer would compute another due time: its kind or expression differ (not its name)."""
    if new_definition is None:
        return True
    return _comparable(old_definition, timer=True) != _comparable(new_definition, timer=True)


def element_change(spec, changes: list[str] | None = None) -> ElementChange:
    """Describe one element of a process spec."""
    return ElementChange(process_id=spec._wf_spec.name, element_id=spec.bpmn_id, name=element_name_of(spec),
                         kind=element_kind(spec), file=getattr(spec._wf_spec, "file", None),
                         changes=list(changes or []))


def element_kind(spec) -> str:
    """The kind of element in words: "user task", "timer event", "message boundary event" ..."""
    siblings = spec._wf_spec.task_specs
    loop = spec if isinstance(spec, LoopTask) else next(
        (s for s in siblings.values() if isinstance(s, LoopTask) and s.task_spec == spec.name), None)
    if loop is not None:
        instance = siblings.get(loop.task_spec)
        inner = _plain_kind(instance) if instance is not None else "task"
        return f"{'repeated' if isinstance(loop, StandardLoopTask) else 'multi-instance'} {inner}"
    return _plain_kind(spec)


def _plain_kind(spec) -> str:
    class_name = type(spec).__name__
    words = "".join(f" {c.lower()}" if c.isupper() else c for c in class_name).strip()
    definition = _definition_word(getattr(spec, "event_definition", None))
    if class_name == "IntermediateCatchEvent":
        return f"{definition} event" if definition else "catch event"
    if class_name.endswith("Event") and definition:
        return f"{definition} {words.removeprefix('intermediate ')}"
    return words.replace("sub workflow task", "sub-process").replace("event based", "event-based")


def _compare(before, after, old: ProcessBundle, new: ProcessBundle, diff: VersionDiff) -> None:
    alignment = spec_diff(before, after)
    matched = set()
    for spec in _elements(before):
        candidate = aligned_spec(alignment, spec, after)
        if candidate is None:
            diff.removed.append(element_change(spec))
            continue
        matched.add(candidate.name)
        changes = changes_between(spec, candidate, old=old, new=new)
        if changes:
            diff.changed.append(element_change(candidate, changes))
    diff.added.extend(element_change(spec) for spec in _elements(after) if spec.name not in matched)


def _elements(process_spec) -> list:
    """The specs that stand for diagram elements (a multi-instance step has two: see `merged`)."""
    return sorted((spec for spec in process_spec.task_specs.values() if spec.bpmn_id),
                  key=lambda spec: (element_name_of(spec).lower(), spec.bpmn_id))


def _ordered(old_specs: dict, new_specs: dict, *, top: str) -> list[str]:
    names = set(old_specs) | set(new_specs)
    return [top, *sorted(names - {top})] if top in names else sorted(names)


def _extension_changes(before: dict, after: dict) -> list[str]:
    words = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) == after.get(key):
            continue
        if key == "properties":
            old_props, new_props = before.get(key) or {}, after.get(key) or {}
            for name in sorted(set(old_props) | set(new_props)):
                if old_props.get(name) != new_props.get(name):
                    words.append(_property_word(name))
        else:
            words.append(_EXTENSION_WORDS.get(key, key))
    return words


def _property_word(name: str) -> str:
    if name in _DUE_RULE:
        return "due rule"
    if name in (FORM_SCHEMA_PROPERTY, FORM_UI_SCHEMA_PROPERTY):
        return "form"
    return f"property '{name}'"


def _event_changes(old_spec, new_spec) -> list[str]:
    old_definitions = _definitions(getattr(old_spec, "event_definition", None))
    new_definitions = _definitions(getattr(new_spec, "event_definition", None))
    words = []
    for index in range(max(len(old_definitions), len(new_definitions))):
        before = old_definitions[index] if index < len(old_definitions) else None
        after = new_definitions[index] if index < len(new_definitions) else None
        timer = isinstance(before, TimerEventDefinition) or isinstance(after, TimerEventDefinition)
        if _comparable(before, timer=timer) != _comparable(after, timer=timer):
            words.append(_definition_word(after) or _definition_word(before) or "event")
    return words


def _definitions(definition) -> list:
    if definition is None:
        return []
    return list(getattr(definition, "event_definitions", None) or [definition])


def _comparable(definition, *, timer: bool) -> dict[str, Any] | None:
    """An event definition as stored, without what only mirrors the element's name."""
    if definition is None:
        return None
    stored = dict(spec_registry().convert(definition))
    stored.pop("description", None)
    if timer:
        stored.pop("name", None)
    return stored


def _definition_word(definition) -> str:
    if definition is None:
        return ""
    if isinstance(definition, TimerEventDefinition):
        return "timer"
    word = type(definition).__name__.removesuffix("EventDefinition")
    return "" if word in ("None", "") else word.lower()


def _form_contents_differ(old_spec, new_spec, old: ProcessBundle, new: ProcessBundle) -> bool:
    for name_before, name_after in zip(_form_names(old_spec), _form_names(new_spec)):
        if name_before and name_before == name_after and old.forms.get(name_before) != new.forms.get(name_after):
            return True
    return False


def _form_names(spec) -> tuple[str | None, str | None]:
    properties = (getattr(spec, "extensions", None) or {}).get("properties") or {}
    if not isinstance(properties, dict):
        return None, None
    return properties.get(FORM_SCHEMA_PROPERTY), properties.get(FORM_UI_SCHEMA_PROPERTY)
