"""The diagrams we ship: they validate, follow the conventions, and their process tests pass with full coverage."""
import json
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from workflows import catalog
from workflows.process_tests import run_diagram_tests

BPMN = Path(__file__).resolve().parents[2] / "bpmn"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
FLOW_NODES = ("startEvent", "endEvent", "userTask", "manualTask", "scriptTask", "serviceTask", "businessRuleTask",
              "sendTask", "receiveTask", "task", "callActivity", "subProcess", "exclusiveGateway", "parallelGateway",
              "inclusiveGateway", "eventBasedGateway", "intermediateCatchEvent", "intermediateThrowEvent",
              "boundaryEvent")
SETTINGS = ("acute_hospital", "inpatient_rehab", "workers_comp")
DIAGRAMS = sorted(BPMN.glob("*/*.bpmn"))
PROCESS_TESTS = sorted(BPMN.glob("*/tests/*.yaml"))


@pytest.fixture(scope="session")
def report():
    sets = catalog.find_diagram_sets(BPMN)
    return run_diagram_tests(sets, sets)


def test_every_setting_has_diagrams_and_process_tests():
    for setting in SETTINGS:
        assert list((BPMN / setting).glob("*.bpmn")), f"no diagrams for {setting}"
        assert list((BPMN / setting / "tests").glob("*.yaml")), f"no process tests for {setting}"


def test_every_diagram_set_validates(report):
    assert report.problems == []


@pytest.mark.parametrize("path", PROCESS_TESTS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_process_test_passes(report, path):
    label = f"{path.parent.parent.name}/tests/{path.name}"
    [outcome] = [o for o in report.outcomes if o.test.path == label]
    assert outcome.failures == []


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_process_tests_reach_every_flow_node_and_take_every_branch(report, path):
    coverage = report.coverage.get(f"{path.parent.name}/{path.name}")
    assert coverage is not None, "no process test starts or calls any process of this diagram"
    assert (coverage.missed, coverage.missed_flows) == ([], [])


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_user_task_has_a_lane_a_form_instructions_and_a_due_rule(path):
    root = etree.parse(str(path)).getroot()
    in_lanes = {ref.text.strip() for ref in root.iterfind(".//bpmn:lane/bpmn:flowNodeRef", NS)}
    lanes = [lane.get("name") for lane in root.iterfind(".//bpmn:lane", NS)]
    assert all(lanes) and lanes, "every lane is named after the role that works it"
    with_boundary_timer = {event.get("attachedToRef") for event in root.iterfind(".//bpmn:boundaryEvent", NS)
                           if event.find("bpmn:timerEventDefinition", NS) is not None}
    problems = []
    for task in root.iterfind(".//bpmn:userTask", NS):
        task_id = task.get("id")
        properties = {p.get("name"): p.get("value") for p in task.iterfind(".//spiffworkflow:property", NS)}
        instructions = task.findtext(".//spiffworkflow:instructionsForEndUser", default="", namespaces=NS).strip()
        form = properties.get("formJsonSchemaFilename")
        if task_id not in in_lanes:
            problems.append(f"{task_id}: not in a lane")
        if not form or not (path.parent / "forms" / form).is_file():
            problems.append(f"{task_id}: form {form!r} not in forms/")
        if not instructions:
            problems.append(f"{task_id}: no instructions for the case manager")
        if not properties.get("dueIn") and task_id not in with_boundary_timer:
            problems.append(f"{task_id}: no due rule and no boundary timer")
    assert problems == []


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_element_is_drawn(path):
    root = etree.parse(str(path)).getroot()
    drawn = {shape.get("bpmnElement") for shape in root.iterfind(".//bpmndi:BPMNShape", NS)}
    drawn |= {edge.get("bpmnElement") for edge in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    elements = [el.get("id") for name in (*FLOW_NODES, "sequenceFlow", "lane", "participant")
                for el in root.iterfind(f".//bpmn:{name}", NS)]
    assert [element for element in elements if element not in drawn] == []


@pytest.fixture(scope="session")
def moddle_imports():
    script = Path(__file__).with_name("moddle_import.mjs")
    if not (BPMN.parent / "node_modules" / "bpmn-moddle").is_dir():
        pytest.fail("bpmn-moddle is not installed: `make test` runs `npm ci` first.")
    done = subprocess.run(["node", str(script), *map(str, DIAGRAMS)], capture_output=True, text=True,
                          cwd=BPMN.parent, timeout=120)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert results, done.stderr
    return {Path(result["path"]).resolve(): result for result in results}


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_diagram_imports_into_bpmn_io_without_warnings(moddle_imports, path):
    result = moddle_imports[path.resolve()]
    assert (result["error"], result["warnings"]) == (None, [])
    assert result["diagrams"] >= 1, "the file has no diagram interchange (BPMNDI): a modeler would show nothing"
