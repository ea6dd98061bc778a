"""Checks on the Python in diagrams: scripts, conditions and the other expressions the engine evaluates.

Each is compiled under the script sandbox's own policy (`sandbox.check_script`) and never
run: a syntax error or anything the sandbox forbids is an error at deployment rather than
an incident on the first case that reaches it. Timer expressions are checked with the
timers (lint.timer_problem), which uses the same sandbox check.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from lxml import etree

from .diagram_xml import SPIFF_NS, bpmn_tag
from .errors import DiagramProblem, ScriptRejected
from .lint_flow import SCOPES, flow_nodes, live_processes, local_name, outgoing_flows
from .sandbox import check_script

_SCRIPTS = {"preScript": "pre-script", "postScript": "post-script"}
_LOOP_EXPRESSIONS = {"loopCondition": "loop condition", "loopCardinality": "loop cardinality",
                     "completionCondition": "completion condition"}
_CHOICES = ("exclusiveGateway", "inclusiveGateway")


def check_scripts(bpmn: Mapping[str, etree._Element]) -> list[DiagramProblem]:
    """Refuse scripts and expressions with a syntax error or anything the script sandbox forbids."""
    problems = []
    for path, process in live_processes(bpmn):
        for owner, what, element, expression in _code_of(process):
            message = script_problem(what, element.text, expression=expression)
            if message:
                problems.append(DiagramProblem(message, path, owner.get("id"), element.sourceline))
    for path, root in sorted(bpmn.items()):
        if next(live_processes({path: root}), None) is None:
            continue
        for payload in root.iter(f"{{{SPIFF_NS}}}messagePayload"):
            message_element = next(payload.iterancestors(bpmn_tag("message")), payload.getparent())
            message = script_problem("message payload", payload.text, expression=True)
            if message:
                problems.append(DiagramProblem(message, path, message_element.get("id"), payload.sourceline))
    return problems


def _code_of(process: etree._Element) -> Iterator[tuple[etree._Element, str, etree._Element, bool]]:
    """Yield (element to blame, what it is, element holding the code, is an expression)."""
    for task in process.iter(bpmn_tag("scriptTask")):
        for script in task.iterchildren(bpmn_tag("script")):
            yield task, "script", script, False
    for extensions in process.iter(bpmn_tag("extensionElements")):
        for name, what in _SCRIPTS.items():
            for script in extensions.iterchildren(f"{{{SPIFF_NS}}}{name}"):
                yield extensions.getparent(), what, script, False
    for name, what in _LOOP_EXPRESSIONS.items():
        for expression in process.iter(bpmn_tag(name)):
            yield expression.getparent().getparent(), what, expression, True
    for definition in process.iter(bpmn_tag("conditionalEventDefinition")):
        for condition in definition.iterchildren(bpmn_tag("condition")):
            yield definition.getparent(), "event condition", condition, True
    for scope in [process, *(s for tag in SCOPES for s in process.iter(bpmn_tag(tag)))]:
        leaving = outgoing_flows(scope)
        for node_id, node in flow_nodes(scope).items():
            if local_name(node) not in _CHOICES:
                continue
            # SpiffWorkflow never evaluates the default flow's condition, nor one left empty.
            for flow in leaving.get(node_id, []):
                condition = flow.find(bpmn_tag("conditionExpression"))
                if condition is not None and condition.text is not None and flow.get("id") != node.get("default"):
                    yield flow, "condition", condition, True


def script_problem(what: str, text: str | None, *, expression: bool) -> str | None:
    """Say why the sandbox would refuse a script or expression; None when it would compile it."""
    source = text or ""
    if not source.strip():
        return f"the {what} is empty; write the Python it should run or remove it." if expression else None
    try:
        check_script(source, expression=expression)
    except SyntaxError as err:
        line = f" on its line {err.lineno}" if err.lineno and not expression else ""
        return f"the {what} is not valid Python{line} ({err.msg}); correct it."
    except ScriptRejected as err:
        reason = err.message.removeprefix("Script not allowed: ").rstrip(". ")
        return (f"the {what} uses what the script sandbox forbids ({reason}); scripts may use only plain Python "
                "and the helpers listed in bpmn/README.md.")
    return None
