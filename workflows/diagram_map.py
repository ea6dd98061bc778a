"""Where a waiting row of a process version is drawn: on which element of which of its diagrams.

A task, timer, message wait or incident row names only its element id, and ids are unique
per diagram file only; nothing stored says through which call activity a case entered a
called diagram. So a view of one diagram shows a row:
- on its own element, when the id is one of this diagram's (a boundary event's row on the
  activity it sits on: the case waits at that activity), even if another diagram of the
  version uses the same id: the row cannot tell which one it is;
- on the call activity that leads into the diagram the id belongs to, when every way the
  process can reach that diagram passes through that one call activity and no other
  reachable diagram uses the id. Otherwise the row is shown on its own diagram's view only.
The start events of event subprocesses listen for the whole case: nothing waits at them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

from .diagram_xml import BPMN_NS, bpmn_tag, parse_xml

FLOW_NODES = frozenset({
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask", "businessRuleTask",
    "callActivity", "subProcess", "transaction", "adHocSubProcess", "startEvent", "endEvent",
    "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent", "exclusiveGateway", "parallelGateway",
    "inclusiveGateway", "eventBasedGateway", "complexGateway",
})
Edge = tuple[str, str]  # (diagram file, call activity id)


@dataclass
class DiagramElements:
    """The flow nodes of one diagram file, as the process view needs them."""

    names: dict[str, str] = field(default_factory=dict)  # element id -> its name, or its id when unnamed
    attached_to: dict[str, str] = field(default_factory=dict)  # boundary event id -> the activity it sits on
    listening: set[str] = field(default_factory=set)  # start events of event subprocesses
    calls: dict[str, str] = field(default_factory=dict)  # call activity id -> the process id it calls


def read_elements(root: etree._Element) -> DiagramElements:
    """Collect the flow nodes of a parsed BPMN document."""
    found = DiagramElements()
    for element in root.iter():
        if not isinstance(element.tag, str) or not element.get("id"):
            continue
        qname = etree.QName(element)
        if qname.namespace != BPMN_NS or qname.localname not in FLOW_NODES:
            continue
        element_id = element.get("id")
        found.names[element_id] = " ".join((element.get("name") or element_id).split())
        if qname.localname == "boundaryEvent" and element.get("attachedToRef"):
            found.attached_to[element_id] = element.get("attachedToRef")
        elif qname.localname == "callActivity" and element.get("calledElement"):
            found.calls[element_id] = element.get("calledElement")
        elif qname.localname == "startEvent":
            parent = element.getparent()
            if parent is not None and parent.tag == bpmn_tag("subProcess") and parent.get("triggeredByEvent") == "true":
                found.listening.add(element_id)
    return found


class DiagramMap:
    """The diagrams a process can run through, main one first, and where each waiting row is drawn on them."""

    def __init__(self, diagrams: Mapping[str, DiagramElements], *, main: str, process_files: Mapping[str, str]):
        self.main = main
        self.elements = dict(diagrams)
        self._edges = {(path, call): process_files[called] for path, found in diagrams.items()
                       for call, called in found.calls.items() if process_files.get(called) in diagrams}
        self.files = [main, *sorted(self._reached(main) - {main})]
        self._owners: dict[str, set[str]] = {}
        for path in self.files:
            for element_id in diagrams[path].names:
                self._owners.setdefault(element_id, set()).add(path)

    def _reached(self, start: str, *, without: Edge | None = None) -> set[str]:
        """The diagrams `start` leads into through call activities (itself included), not using `without`."""
        reached, frontier = {start}, [start]
        while frontier:
            path = frontier.pop()
            for (source, call), target in self._edges.items():
                if source == path and (source, call) != without and target not in reached:
                    reached.add(target)
                    frontier.append(target)
        return reached

    def rolled_up(self, path: str) -> dict[str, list[str]]:
        """For each call activity of the diagram, the diagrams whose rows it stands for (only through it)."""
        everywhere = set(self.files)
        return {call: sorted(everywhere - self._reached(self.main, without=(path, call)) - {path})
                for (source, call) in self._edges if source == path}

    def shown_on(self, path: str) -> dict[str, str | None]:
        """Map each element id a row may carry to the element of `path` it is drawn on (None: not drawn there)."""
        own = self.elements[path]
        shown: dict[str, str | None] = {}
        for call, called_files in self.rolled_up(path).items():
            for called in called_files:
                for element_id in self.elements[called].names:
                    if self._owners[element_id] == {called}:
                        shown[element_id] = call
        for element_id in own.names:
            shown[element_id] = None if element_id in own.listening else own.attached_to.get(element_id, element_id)
        return shown

    def unplaced(self, path: str) -> list[str]:
        """The diagrams this one leads into whose rows none of its call activities can stand for."""
        leads_to = self._reached(path) - {path}
        placed = {called for files in self.rolled_up(path).values() for called in files}
        return sorted(leads_to - placed)


def diagram_map(files: Mapping[str, bytes], *, main: str, process_files: Mapping[str, str]) -> DiagramMap:
    """Read every BPMN file of a process version; `process_files` says which file defines each called process."""
    diagrams = {}
    for path in sorted(files):
        if path.lower().endswith(".bpmn"):
            root, _ = parse_xml(path, files[path])
            diagrams[path] = read_elements(root) if root is not None else DiagramElements()
    return DiagramMap(diagrams, main=main, process_files=process_files)
