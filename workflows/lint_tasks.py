"""Checks on the tasks people work: who is offered them, what form they fill, when they are due.

A user or manual task's lane is the role offered it, found the way SpiffWorkflow finds
it: the lane of the outermost enclosing sub-process that has one, else the task's own.
A due rule (see workflows/due_rules.py) is checked with the rules that apply it to a
case, here without case data: a literal must parse, a variable name must be a name.
"""
from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from . import calendar
from .diagram_xml import FORM_SCHEMA_PROPERTY, SPIFF_NS, bpmn_tag
from .due_rules import _CALENDARS, _ISO_DURATION, _VARIABLE
from .errors import WARNING, DiagramProblem
from .lint_flow import SCOPES, live_processes, local_name

HUMAN_TASKS = ("userTask", "manualTask")
_DUE_RULE_PROPERTIES = ("dueIn", "calendar", "dueFrom", "dueTime")


def check_human_tasks(bpmn: Mapping[str, etree._Element]) -> list[DiagramProblem]:
    """Warn about tasks no role is offered or that have no form; refuse malformed due rules."""
    problems = []
    for path, process in live_processes(bpmn):
        lanes = _lanes_by_node(process.getroottree().getroot())
        for task in (t for tag in HUMAN_TASKS for t in process.iter(bpmn_tag(tag))):
            where = (path, task.get("id"), task.sourceline)
            kind = "user task" if local_name(task) == "userTask" else "manual task"
            properties = task_properties(task)
            if not _lane_of(task, lanes):
                problems.append(DiagramProblem(
                    f"{kind} is in no named lane, so no role is offered it and only supervisors will see it; "
                    "put it in the lane of the role that does this work.", *where, severity=WARNING))
            if kind == "user task" and not properties.get(FORM_SCHEMA_PROPERTY):
                problems.append(DiagramProblem(
                    f"user task names no form ({FORM_SCHEMA_PROPERTY}), so it is completed with no data; "
                    "name a JSON Schema form in its properties.", *where, severity=WARNING))
            problems += [DiagramProblem(f"the due rule is not valid: {message}", *where)
                         for message in due_rule_problems(properties)]
    return problems


def task_properties(task: etree._Element) -> dict[str, str]:
    """The spiffworkflow properties of a task, by name."""
    found = task.find(f"{bpmn_tag('extensionElements')}/{{{SPIFF_NS}}}properties")
    if found is None:
        return {}
    return {prop.get("name"): prop.get("value") for prop in found.iter(f"{{{SPIFF_NS}}}property") if prop.get("name")}


def _lanes_by_node(root: etree._Element) -> dict[str, str | None]:
    # SpiffWorkflow's own lookup: any lane of the document, by the exact text of flowNodeRef.
    return {ref.text: ref.getparent().get("name") for ref in root.iter(bpmn_tag("flowNodeRef")) if ref.text is not None}


def _lane_of(task: etree._Element, lanes: Mapping[str, str | None]) -> str | None:
    enclosing = [scope for scope in task.iterancestors() if local_name(scope) in SCOPES]
    for element in [*reversed(enclosing), task]:
        if lanes.get(element.get("id")):
            return lanes[element.get("id")]
    return None


def due_rule_problems(properties: Mapping[str, str | None]) -> list[str]:
    """Say what is wrong with a task's due rule, without case data; [] when it can be applied."""
    due_in, business_calendar = properties.get("dueIn"), False
    problems = []
    if not due_in:
        set_alone = [name for name in _DUE_RULE_PROPERTIES[1:] if properties.get(name)]
        if set_alone:
            problems.append(f"{', '.join(set_alone)} is set but dueIn is not, so the task gets no due date; "
                            "set dueIn, e.g. \"P1D\", or remove the other due rule properties.")
    calendar_text = str(properties.get("calendar") or "").strip()
    if calendar_text.lower() in _CALENDARS:
        business_calendar = calendar_text.lower() == "business"
    elif calendar_text and not _VARIABLE.match(calendar_text):
        problems.append(f"calendar must be \"business\", \"calendar\" or the name of a case-data variable "
                        f"holding one of them; got {calendar_text!r}.")
    if due_in:
        problems += _due_in_problems(due_in.strip(), business_calendar=business_calendar)
    due_from = str(properties.get("dueFrom") or "").strip()
    if properties.get("dueFrom") and not _VARIABLE.match(due_from):
        problems.append(f"dueFrom must name a case-data variable holding an ISO 8601 date-time; got {due_from!r}.")
    if properties.get("dueTime"):
        try:
            calendar.parse_time_of_day(properties["dueTime"].strip())
        except ValueError as err:
            problems.append(f"dueTime: {err}.")
    return problems


def _due_in_problems(due_in: str, *, business_calendar: bool) -> list[str]:
    if not _ISO_DURATION.match(due_in):
        if _VARIABLE.match(due_in):
            return []
        return [f"dueIn must be an ISO 8601 duration such as \"PT24H\", or the name of a case-data variable; "
                f"got {due_in!r}."]
    try:
        parts = calendar.parse_duration(due_in)
    except ValueError as err:
        return [f"dueIn: {err}."]
    days = parts.get("days", 0) + 7 * parts.get("weeks", 0)
    if business_calendar and (parts.get("years") or parts.get("months")):
        return [f"dueIn {due_in!r} counts years or months, which a business calendar cannot; use days or weeks."]
    if business_calendar and days != int(days):
        return [f"dueIn {due_in!r} counts part of a day, which a business calendar cannot; use whole days and hours."]
    return []
