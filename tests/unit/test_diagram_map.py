"""Where a waiting row is drawn in the process view: own elements, boundary events, call activities, ambiguity."""
from __future__ import annotations

from workflows.diagram_map import DiagramElements, DiagramMap, diagram_map

STAY = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="x">
  <bpmn:process id="stay" isExecutable="true">
    <bpmn:startEvent id="admitted"/>
    <bpmn:userTask id="review" name="  Admission
      review "/>
    <bpmn:boundaryEvent id="review_late" attachedToRef="review"><bpmn:timerEventDefinition/></bpmn:boundaryEvent>
    <bpmn:callActivity id="plan_discharge" name="Plan discharge" calledElement="discharge"/>
    <bpmn:sequenceFlow id="flow_1" sourceRef="admitted" targetRef="review"/>
    <bpmn:subProcess id="on_transfer" triggeredByEvent="true">
      <bpmn:startEvent id="transfer_requested"><bpmn:messageEventDefinition/></bpmn:startEvent>
      <bpmn:scriptTask id="note_transfer"/>
    </bpmn:subProcess>
  </bpmn:process>
</bpmn:definitions>"""
DISCHARGE = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="e" targetNamespace="x">
  <bpmn:process id="discharge" isExecutable="true"><bpmn:userTask id="book_transport"/></bpmn:process>
</bpmn:definitions>"""


def elements(*ids: str, calls: dict[str, str] | None = None) -> DiagramElements:
    return DiagramElements(names={element_id: element_id for element_id in ids}, calls=dict(calls or {}))


class TestReadingADiagram:
    def test_flow_nodes_their_names_boundary_events_listeners_and_calls_are_found(self):
        layout = diagram_map({"stay.bpmn": STAY, "discharge.bpmn": DISCHARGE, "forms/x.json": b"{}"},
                             main="stay.bpmn", process_files={"stay": "stay.bpmn", "discharge": "discharge.bpmn"})
        stay = layout.elements["stay.bpmn"]
        assert stay.names["review"] == "Admission review" and stay.names["admitted"] == "admitted"
        assert "flow_1" not in stay.names and "stay" not in stay.names, "only flow nodes: no flows, no process"
        assert stay.attached_to == {"review_late": "review"}
        assert stay.listening == {"transfer_requested"}
        assert stay.calls == {"plan_discharge": "discharge"}
        assert layout.files == ["stay.bpmn", "discharge.bpmn"]

    def test_a_row_is_drawn_on_its_element_the_task_its_boundary_timer_sits_on_or_the_call_activity(self):
        layout = diagram_map({"stay.bpmn": STAY, "discharge.bpmn": DISCHARGE}, main="stay.bpmn",
                             process_files={"discharge": "discharge.bpmn"})
        shown = layout.shown_on("stay.bpmn")
        assert shown["review"] == shown["review_late"] == "review"
        assert shown["transfer_requested"] is None, "every case listens there; none waits there"
        assert shown["book_transport"] == "plan_discharge"
        assert sorted(source for source, on in shown.items() if on == "plan_discharge") == [
            "book_transport", "plan_discharge"], "the call activity's own rows (an incident) stay on it too"
        assert layout.shown_on("discharge.bpmn") == {"book_transport": "book_transport"}


class TestCallActivities:
    def test_a_diagram_called_through_a_chain_is_drawn_on_each_calls_own_view(self):
        layout = DiagramMap({"main.bpmn": elements("start", "call_a", calls={"call_a": "a"}),
                             "a.bpmn": elements("task_a", "call_b", calls={"call_b": "b"}),
                             "b.bpmn": elements("task_b")},
                            main="main.bpmn", process_files={"a": "a.bpmn", "b": "b.bpmn"})
        assert layout.rolled_up("main.bpmn") == {"call_a": ["a.bpmn", "b.bpmn"]}
        assert layout.shown_on("main.bpmn")["task_b"] == layout.shown_on("main.bpmn")["task_a"] == "call_a"
        assert layout.shown_on("a.bpmn")["task_b"] == "call_b"
        assert layout.unplaced("main.bpmn") == []

    def test_a_diagram_reached_from_two_places_is_drawn_only_on_its_own_view(self):
        layout = DiagramMap({"main.bpmn": elements("manage", "close", calls={"manage": "cm", "close": "letters"}),
                             "cm.bpmn": elements("contact", "report", calls={"report": "letters"}),
                             "letters.bpmn": elements("send_letter")},
                            main="main.bpmn", process_files={"cm": "cm.bpmn", "letters": "letters.bpmn"})
        assert layout.rolled_up("main.bpmn") == {"manage": ["cm.bpmn"], "close": []}
        assert "send_letter" not in layout.shown_on("main.bpmn")
        assert "send_letter" not in layout.shown_on("cm.bpmn"), "a letter may come from the closing call instead"
        assert layout.unplaced("main.bpmn") == layout.unplaced("cm.bpmn") == ["letters.bpmn"]
        assert layout.shown_on("letters.bpmn") == {"send_letter": "send_letter"}

    def test_an_id_used_in_two_diagrams_stays_on_the_viewed_diagrams_own_element(self):
        layout = DiagramMap({"main.bpmn": elements("merge", "call_a", calls={"call_a": "a"}),
                             "a.bpmn": elements("merge", "task_a")},
                            main="main.bpmn", process_files={"a": "a.bpmn"})
        shown = layout.shown_on("main.bpmn")
        assert shown["merge"] == "merge" and shown["task_a"] == "call_a"
        assert layout.shown_on("a.bpmn")["merge"] == "merge"

    def test_a_call_to_a_process_not_among_the_files_leads_nowhere(self):
        layout = DiagramMap({"main.bpmn": elements("call_x", calls={"call_x": "missing"})},
                            main="main.bpmn", process_files={})
        assert layout.files == ["main.bpmn"] and layout.rolled_up("main.bpmn") == {}
