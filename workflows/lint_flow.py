"""Checks on how a case moves through a diagram: unreachable elements, loops, gateways.

SpiffWorkflow parses only what a start event leads to, so an element no path reaches is
never checked and never runs. A loop of sequence flows that can turn without waiting
runs all its passes inside one engine step: every pass adds tasks to the case's history,
and SpiffWorkflow stops silently after about 250 of them (DESIGN §3). A gateway whose
every outgoing flow has a condition, and no default, fails the case when none matches.
These checks read the XML only; they apply to executable processes, the ones that run.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from lxml import etree

from .diagram_xml import bpmn_tag, is_executable
from .errors import WARNING, DiagramProblem

SCOPES = ("subProcess", "transaction", "adHocSubProcess")
FLOW_NODES = frozenset({
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "businessRuleTask", "sendTask",
    "receiveTask", "callActivity", *SCOPES, "exclusiveGateway", "parallelGateway", "inclusiveGateway",
    "eventBasedGateway", "complexGateway",
})
# What a case stops at until a person, an API call, a timer or a message moves it on.
_WAITING_TASKS = frozenset({"userTask", "manualTask", "receiveTask", "serviceTask", "eventBasedGateway"})
_INSTANT_EVENTS = frozenset({"linkEventDefinition", "errorEventDefinition", "escalationEventDefinition",
                             "compensateEventDefinition", "cancelEventDefinition"})
_CHOICES = {"exclusiveGateway": "exclusive", "inclusiveGateway": "inclusive"}


def local_name(element: etree._Element) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def live_processes(bpmn: Mapping[str, etree._Element]) -> Iterator[tuple[str, etree._Element]]:
    """Yield (file, process) for every executable process: the ones whose elements can run."""
    for path, root in sorted(bpmn.items()):
        for process in root.iter(bpmn_tag("process")):
            if is_executable(process):
                yield path, process


def flow_nodes(scope: etree._Element) -> dict[str, etree._Element]:
    """The flow nodes directly inside a process or sub-process, by id."""
    return {child.get("id"): child for child in scope if local_name(child) in FLOW_NODES and child.get("id")}


def outgoing_flows(scope: etree._Element) -> dict[str, list[etree._Element]]:
    """The sequence flows of a process or sub-process, by the id of the element they leave."""
    leaving: dict[str, list[etree._Element]] = {}
    for flow in scope.iterchildren(bpmn_tag("sequenceFlow")):
        leaving.setdefault(flow.get("sourceRef"), []).append(flow)
    return leaving


def _successors(scope: etree._Element, nodes: Mapping[str, etree._Element]) -> dict[str, list[str]]:
    following: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for source, flows in outgoing_flows(scope).items():
        if source in following:
            following[source] += [flow.get("targetRef") for flow in flows if flow.get("targetRef") in nodes]
    for node_id, node in nodes.items():
        # A boundary event is reached when its activity is.
        if local_name(node) == "boundaryEvent" and node.get("attachedToRef") in following:
            following[node.get("attachedToRef")].append(node_id)
    return following


def _starts_on_its_own(node: etree._Element) -> bool:
    return ((local_name(node) == "startEvent") or node.get("triggeredByEvent") == "true"
            or node.get("isForCompensation") == "true")


def check_unreachable(bpmn: Mapping[str, etree._Element]) -> list[DiagramProblem]:
    """Warn about flow nodes that no path of sequence flows reaches from a start event."""
    problems: list[DiagramProblem] = []
    for path, process in live_processes(bpmn):
        problems += _unreachable_in(path, process)
    return problems


def _unreachable_in(path: str, scope: etree._Element) -> list[DiagramProblem]:
    nodes = flow_nodes(scope)
    if local_name(scope) == "adHocSubProcess":
        starts = list(nodes)  # its activities are started by hand, not by flows
    elif not any(local_name(node) == "startEvent" for node in nodes.values()):
        return []  # SpiffWorkflow refuses a process or sub-process without a start event itself
    else:
        starts = [node_id for node_id, node in nodes.items() if _starts_on_its_own(node)]
    following, reached, queue = _successors(scope, nodes), set(starts), list(starts)
    while queue:
        for target in following[queue.pop()]:
            if target not in reached:
                reached.add(target)
                queue.append(target)
    problems = []
    kind = "process" if local_name(scope) == "process" else "sub-process"
    for node_id, node in nodes.items():
        if node_id not in reached:
            problems.append(DiagramProblem(
                f"no path of sequence flows reaches this element from a start event of {kind} "
                f"'{scope.get('id')}', so it never runs; connect it or delete it.",
                path, node_id, node.sourceline, severity=WARNING))
        elif local_name(node) in SCOPES:
            problems += _unreachable_in(path, node)
    return problems


def check_loops(bpmn: Mapping[str, etree._Element]) -> list[DiagramProblem]:
    """Warn about loops of sequence flows that can turn without waiting for anything."""
    processes = {process.get("id"): process for root in bpmn.values() for process in root.iter(bpmn_tag("process"))}
    problems = []
    for path, process in live_processes(bpmn):
        for scope in [process, *(s for tag in SCOPES for s in process.iter(bpmn_tag(tag)))]:
            nodes = flow_nodes(scope)
            following = _successors(scope, nodes)
            instant = {node_id for node_id, node in nodes.items() if not _waits(node, processes, set())}
            graph = {node_id: [t for t in following[node_id] if t in instant]
                     for node_id in nodes if node_id in instant}
            for loop in _cycles(graph):
                members = [node_id for node_id in nodes if node_id in loop]  # in document order
                at = next((m for m in members if "Gateway" in local_name(nodes[m])), members[0])
                problems.append(DiagramProblem(
                    f"the loop through {', '.join(repr(m) for m in members)} can turn without waiting for a "
                    "person, a timer or a message: every pass adds to the case's history, and SpiffWorkflow "
                    "stops silently after about 250 passes in one step. Put a wait in the loop, or use a "
                    "multi-instance or loop activity, a call activity, or a timer-cycle event sub-process.",
                    path, at, nodes[at].sourceline, severity=WARNING))
    return problems


def _waits(node: etree._Element, processes: Mapping[str, etree._Element], seen: set[str]) -> bool:
    """Tell whether a case can stop at this element until something outside the engine moves it."""
    kind = local_name(node)
    if kind in _WAITING_TASKS:
        return True
    if kind in ("intermediateCatchEvent", "boundaryEvent"):
        definitions = [local_name(child) for child in node if local_name(child).endswith("EventDefinition")]
        return any(definition not in _INSTANT_EVENTS for definition in definitions)
    if kind in SCOPES:
        return any(_waits(inner, processes, seen) for inner in node.iterdescendants()
                   if local_name(inner) in FLOW_NODES)
    if kind == "callActivity":
        called = node.get("calledElement")
        if called not in processes:
            return True  # check_calls reports it; do not add a second, misleading problem
        if called in seen:
            return False
        seen.add(called)
        return any(_waits(inner, processes, seen) for inner in processes[called].iterdescendants()
                   if local_name(inner) in FLOW_NODES)
    return False


def _cycles(graph: Mapping[str, list[str]]) -> list[set[str]]:
    """The strongly connected parts of a graph that hold a cycle (Tarjan, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            step = next(successors, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(graph[step])))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                part = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    part.add(member)
                    if member == node:
                        break
                if len(part) > 1 or node in graph[node]:
                    found.append(part)
    return found


def check_gateway_defaults(bpmn: Mapping[str, etree._Element]) -> list[DiagramProblem]:
    """Warn about exclusive and inclusive gateways that fail a case whose data matches no condition."""
    problems = []
    for path, process in live_processes(bpmn):
        for scope in [process, *(s for tag in SCOPES for s in process.iter(bpmn_tag(tag)))]:
            leaving = outgoing_flows(scope)
            for node_id, node in flow_nodes(scope).items():
                flows = leaving.get(node_id, [])
                if local_name(node) not in _CHOICES or node.get("default") or not flows:
                    continue
                # SpiffWorkflow reads an empty condition as none: that flow is always taken.
                if all(getattr(flow.find(bpmn_tag("conditionExpression")), "text", None) is not None
                       for flow in flows):
                    problems.append(DiagramProblem(
                        f"{_CHOICES[local_name(node)]} gateway has no default flow and a condition on every "
                        "outgoing flow: a case whose data matches none of them fails here. Mark one outgoing "
                        "flow as the default.", path, node_id, node.sourceline, severity=WARNING))
    return problems
