"""Checks on a diagram set's XML that SpiffWorkflow does not make, or makes too late.

SpiffWorkflow accepts a call activity that calls itself, evaluates a bare `P1D` timer as
a Python name at run time, and finds a missing form only when a case reaches the task.
These checks catch such mistakes at deployment. Each returns DiagramProblems located by
file, element id and line; none raises for bad content.
"""
from __future__ import annotations

import ast
import json
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from .diagram_xml import (
    FORM_SCHEMA_PROPERTY,
    bpmn_tag,
    decision_ref,
    declared_decisions,
    form_references,
    is_executable,
    resolve_form,
)
from .errors import DiagramProblem
from .lint_scripts import script_problem

_CONTAINERS = ("process", "subProcess", "transaction", "adHocSubProcess")
_TIMER_KINDS = {"timeDate": "timer date", "timeDuration": "timer duration", "timeCycle": "timer cycle"}
_ISO_WORDS = {"timer date": "date and time", "timer duration": "duration", "timer cycle": "repeating interval"}
# Text SpiffWorkflow would evaluate as Python although the designer meant an ISO 8601 literal.
_BARE_ISO = re.compile(r"^(?:R\d*/|P(?=[\dT])[\dYMWDTHS.,]*$|\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class Call:
    """A call activity, with the process it sits in and the process it calls."""

    file: str
    caller: str | None
    element: etree._Element
    called: str | None


@dataclass
class DiagramIndex:
    """What a set declares and what it calls, with where each is written."""

    processes: dict[str, list[tuple[str, etree._Element]]] = field(default_factory=dict)
    scopes: dict[str, list[tuple[str, etree._Element]]] = field(default_factory=dict)
    decisions: dict[str, list[tuple[str, etree._Element]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    @classmethod
    def of(cls, bpmn: Mapping[str, etree._Element], dmn: Mapping[str, etree._Element]) -> "DiagramIndex":
        """Index the processes, sub-processes, decisions and call activities of parsed files."""
        index = cls()
        for path, root in sorted(bpmn.items()):
            for process in root.iter(bpmn_tag("process")):
                if process.get("id"):
                    index.processes.setdefault(process.get("id"), []).append((path, process))
            for tag in _CONTAINERS:
                for scope in root.iter(bpmn_tag(tag)):
                    if scope.get("id"):
                        index.scopes.setdefault(scope.get("id"), []).append((path, scope))
            for call in root.iter(bpmn_tag("callActivity")):
                caller = next(call.iterancestors(bpmn_tag("process")), None)
                index.calls.append(Call(path, caller.get("id") if caller is not None else None,
                                        call, call.get("calledElement")))
        for path, root in sorted(dmn.items()):
            for decision in declared_decisions(root):
                if decision.get("id"):
                    index.decisions.setdefault(decision.get("id"), []).append((path, decision))
        return index


def check_duplicate_ids(index: DiagramIndex) -> list[DiagramProblem]:
    """Refuse a process or decision id declared twice: SpiffWorkflow would keep only one."""
    problems = []
    for kind, declarations in (("process", index.scopes), ("decision", index.decisions)):
        for element_id, places in declarations.items():
            first_file, first = places[0]
            for path, element in places[1:]:
                problems.append(DiagramProblem(
                    f"{kind} id '{element_id}' is already declared in {first_file} (line {first.sourceline}); "
                    f"{kind} ids must be unique within a set.", path, element_id, element.sourceline))
    return problems


def check_executable(bpmn: Mapping[str, etree._Element]) -> list[DiagramProblem]:
    """Refuse a set that has nothing to start."""
    if not bpmn:
        return [DiagramProblem("the set has no BPMN diagram, so no process can be started.")]
    processes = {path: list(root.iter(bpmn_tag("process"))) for path, root in bpmn.items()}
    if any(is_executable(process) for found in processes.values() for process in found):
        return []
    problems = []
    for path, found in sorted(processes.items()):
        if not found:
            problems.append(DiagramProblem("the set has no executable process: this file defines no process.", path))
            continue
        names = ", ".join(f"'{process.get('id')}'" for process in found)
        problems.append(DiagramProblem(
            f"the set has no executable process: {names} marked isExecutable=\"false\" cannot be started.",
            path, found[0].get("id"), found[0].sourceline))
    return problems


def check_calls(index: DiagramIndex) -> list[DiagramProblem]:
    """Find call activities that call nothing, or call back into their own process."""
    problems = []
    graph: dict[str, set[str]] = {}
    for call in index.calls:
        if call.caller and call.called:
            graph.setdefault(call.caller, set()).add(call.called)
    for call in index.calls:
        where = (call.file, call.element.get("id"), call.element.sourceline)
        if not call.called:
            problems.append(DiagramProblem("call activity has no calledElement; name the process it calls.", *where))
        elif call.called not in index.processes:
            problems.append(DiagramProblem(
                f"call activity calls process '{call.called}', which no diagram in the set defines.", *where))
        elif call.caller and (path := _call_path(graph, call.called, call.caller)):
            cycle = " -> ".join([call.caller, *path])
            problems.append(DiagramProblem(
                f"call activity makes process '{call.caller}' call itself ({cycle}); "
                "recursive call activities are not allowed.", *where))
    return problems


def _call_path(graph: Mapping[str, set[str]], start: str, goal: str) -> list[str] | None:
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        if current == goal:
            path = [current]
            while previous[path[-1]] is not None:
                path.append(previous[path[-1]])
            return path[::-1]
        for following in sorted(graph.get(current, ())):
            if following not in previous:
                previous[following] = current
                queue.append(following)
    return None


def check_decisions(index: DiagramIndex, *, bpmn: Mapping[str, etree._Element],
                    dmn: Mapping[str, etree._Element], flavour: str) -> list[DiagramProblem]:
    """Every business rule task names a decision the set's DMN files define, one per file."""
    problems = []
    attribute = "spiffworkflow:calledDecisionId" if flavour == "spiff" else "camunda:decisionRef"
    for path, root in sorted(bpmn.items()):
        for task in root.iter(bpmn_tag("businessRuleTask")):
            ref, where = decision_ref(task, flavour), (path, task.get("id"), task.sourceline)
            if not ref:
                problems.append(DiagramProblem(f"business rule task names no decision; set {attribute}.", *where))
            elif ref not in index.decisions:
                problems.append(DiagramProblem(
                    f"business rule task calls decision '{ref}', which no DMN file in the set defines.", *where))
    for path, root in sorted(dmn.items()):
        count = len(declared_decisions(root))
        if count != 1:
            problems.append(DiagramProblem(
                f"the file holds {count} decisions; put exactly one decision in each DMN file.", path))
    return problems


def check_sequence_flows(bpmn: Mapping[str, etree._Element]) -> list[DiagramProblem]:
    """Every sequence flow starts and ends at an element of its own process or sub-process."""
    problems = []
    for path, root in sorted(bpmn.items()):
        for tag in _CONTAINERS:
            for scope in root.iter(bpmn_tag(tag)):
                ids = {element.get("id") for element in scope.iter() if isinstance(element.tag, str)}
                kind = "process" if tag == "process" else "sub-process"
                for flow in scope.iterchildren(bpmn_tag("sequenceFlow")):
                    for end, attribute in (("source", "sourceRef"), ("target", "targetRef")):
                        ref = flow.get(attribute)
                        if ref and ref not in ids:
                            problems.append(DiagramProblem(
                                f"sequence flow {end} '{ref}' is not an element of {kind} '{scope.get('id')}'.",
                                path, flow.get("id"), flow.sourceline))
    return problems


def check_timers(bpmn: Mapping[str, etree._Element]) -> list[DiagramProblem]:
    """Every timer expression is Python that SpiffWorkflow can evaluate to ISO 8601."""
    problems = []
    for path, root in sorted(bpmn.items()):
        for definition in root.iter(bpmn_tag("timerEventDefinition")):
            event = definition.getparent()
            for local_name, kind in _TIMER_KINDS.items():
                for expression in definition.iter(bpmn_tag(local_name)):
                    message = timer_problem(kind, expression.text)
                    if message:
                        problems.append(DiagramProblem(message, path, event.get("id"), expression.sourceline))
    return problems


def timer_problem(kind: str, text: str | None) -> str | None:
    """Say what is wrong with a timer expression, which SpiffWorkflow evaluates as Python."""
    expression = (text or "").strip()
    if not expression:
        return f"{kind} is empty; give a quoted ISO 8601 value, e.g. \"PT24H\"."
    if _BARE_ISO.match(expression):
        return f"{kind} '{expression}' must be quoted, e.g. \"{expression}\"."
    try:
        compile(expression, "<timer>", "eval")
    except SyntaxError as exc:
        return (f"{kind} '{expression}' is not a valid expression ({exc.msg}); "
                "quote a literal ISO 8601 value, e.g. \"PT24H\".")
    try:
        value = ast.literal_eval(expression)
    except Exception:
        # A real expression, evaluated when the timer starts: it must pass the script sandbox,
        # and an ISO 8601 literal inside it must be quoted too (Python reads PT24H as a variable).
        unquoted = [node.id for node in ast.walk(ast.parse(expression, mode="eval"))
                    if isinstance(node, ast.Name) and _BARE_ISO.match(node.id)]
        if unquoted:
            return (f"{kind} '{expression}' uses {unquoted[0]} as a variable name; "
                    f"an ISO 8601 value inside an expression must be quoted too, e.g. \"{unquoted[0]}\".")
        return script_problem(kind, expression, expression=True)
    if not isinstance(value, str):
        return f"{kind} {expression} is not ISO 8601 text; quote one, e.g. \"PT24H\"."
    try:
        _parse_timer_literal(kind, value)
    except Exception:
        return f"{kind} {expression} is not a valid ISO 8601 {_ISO_WORDS[kind]}."
    return None


def _parse_timer_literal(kind: str, value: str) -> None:
    if kind == "timer duration":
        TimerEventDefinition.parse_iso_duration(value)
    elif kind == "timer date":
        if not hasattr(TimerEventDefinition.parse_time_or_duration(value), "tzinfo"):
            raise ValueError("a duration is not a date")
    else:
        # Mirrors timers._parse_recurring_interval, without reading the clock.
        components = value.upper().replace("--", "/").strip("R").split("/")
        if len(components) == 2 and components[1].startswith("P"):
            if components[0]:
                int(components[0])
            TimerEventDefinition.parse_iso_duration(components[1])
        else:
            TimerEventDefinition.parse_iso_recurring_interval(value)


def check_forms(files: Mapping[str, bytes], bpmn: Mapping[str, etree._Element]) -> list[DiagramProblem]:
    """Every form a task names exists and is valid JSON; schemas are valid JSON Schemas."""
    problems, schemas = [], {path for path in files if path.endswith(".schema.json")}
    for path, root in sorted(bpmn.items()):
        for task, prop, name in form_references(root):
            found = resolve_form(files, path, name)
            if found is None:
                problems.append(DiagramProblem(
                    f"form '{name}' was not found next to the diagram or in a forms/ folder.",
                    path, task.get("id"), task.sourceline))
            elif prop == FORM_SCHEMA_PROPERTY:
                schemas.add(found)
    for path in sorted(path for path in files if path.endswith(".json")):
        problems.extend(_form_file_problems(path, files[path], is_schema=path in schemas))
    return problems


def _form_file_problems(path: str, data: bytes, *, is_schema: bool) -> list[DiagramProblem]:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return [DiagramProblem("the file is not UTF-8 text.", path)]
    except json.JSONDecodeError as exc:
        return [DiagramProblem(f"the file is not valid JSON: {exc.msg}.", path, line=exc.lineno)]
    if is_schema:
        try:
            Draft202012Validator.check_schema(document)
        except SchemaError as exc:
            where = "/".join(str(part) for part in exc.path) or "the top level"
            return [DiagramProblem(f"the form schema is not a valid JSON Schema at {where}: {exc.message}.", path)]
    return []
