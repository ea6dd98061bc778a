"""The catalog against the public BPMN corpus: every file deploys or is refused with located problems.

The corpus is third-party data read in place (never copied into the project); see its
MANIFEST.txt for sources, licences and the role of each file. A file is built as a set
with its sibling DMN files; call_activity_nested/ is one set. Whatever SpiffWorkflow
raises on these files, only DiagramError may come out of the catalog.
"""
from __future__ import annotations

from collections import Counter, OrderedDict

import pytest

from tests.corpus import conformance_dir
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from workflows import catalog
from workflows.errors import DiagramError

CORPUS = conformance_dir()
if not CORPUS.is_dir():
    pytest.skip(f"conformance corpus not found at {CORPUS}", allow_module_level=True)

NESTED = "spiffworkflow/bpmn/call_activity_nested"

# Expected outcome per set: the deployable process ids, or a fragment of one problem's message.
DEPLOYABLE, REJECTED = "deployable", "rejected"
EXPECTED: dict[str, tuple[str, object]] = {
    "bpmn-js-examples/kitchen-sink.bpmn": (REJECTED, "does not follow the BPMN 2.0 schema"),
    "bpmn-js-examples/nested-subprocesses.bpmn": (DEPLOYABLE, ["rootProcess"]),
    "bpmn-js-examples/starter-diagram.bpmn": (REJECTED, "no executable process"),
    "miwg/bpmn-io-18.6.1/A.4.0-export.bpmn": (DEPLOYABLE, ["Process_0elb8rq"]),
    "miwg/bpmn-io-18.6.1/C.2.0-export.bpmn": (DEPLOYABLE, ["Process_1h3m6w5"]),
    "miwg/reference/A.1.0.bpmn": (REJECTED, "no executable process"),
    "miwg/reference/A.2.0.bpmn": (REJECTED, "no executable process"),
    "miwg/reference/A.3.0.bpmn": (REJECTED, "no executable process"),
    "miwg/reference/A.4.0.bpmn": (REJECTED, "no executable process"),
    "miwg/reference/A.4.1.bpmn": (REJECTED, "no executable process"),
    "miwg/reference/B.1.0.bpmn": (REJECTED, "Data Store with name Data Store Reference has no implementation"),
    "miwg/reference/B.2.0.bpmn": (REJECTED, "Data Store with name Data Store Reference has no implementation"),
    "miwg/reference/C.1.0.bpmn": (REJECTED, "A Service Task must have an operator"),
    "miwg/reference/C.2.0.bpmn": (REJECTED, "no executable process"),
    "miwg/reference/C.3.0.bpmn": (REJECTED, "Exactly one start event is required in a SubWorkflow Task"),
    "miwg/reference/C.4.0.bpmn": (REJECTED, "Data Store with name Employee Details has no implementation"),
    "miwg/reference/C.7.0.bpmn": (REJECTED, "Cannot resolve dataOutputAssociation"),
    "miwg/reference/C.9.0.bpmn": (REJECTED, "business rule task names no decision; set camunda:decisionRef"),
    "miwg/reference/C.9.1.bpmn": (REJECTED, "timer cycle 'R6/P1D' must be quoted, e.g. \"R6/P1D\"."),
    "spiffworkflow/bpmn/Approvals.bpmn": (DEPLOYABLE, ["Approvals"]),
    "spiffworkflow/bpmn/ParallelOrder.bpmn": (DEPLOYABLE, ["ParallelOrder"]),
    "spiffworkflow/bpmn/boundary_timer_on_task.bpmn": (DEPLOYABLE, ["test_timer"]),
    "spiffworkflow/bpmn/collaboration.bpmn": (DEPLOYABLE, ["process_buddy"]),
    "spiffworkflow/bpmn/event-gateway.bpmn": (DEPLOYABLE, ["Process_0pvx19v"]),
    "spiffworkflow/bpmn/exclusive_gateway_no_default.bpmn": (DEPLOYABLE, ["NoDefaultGateway"]),
    "spiffworkflow/bpmn/inclusive_gateway.bpmn": (DEPLOYABLE, ["main"]),
    "spiffworkflow/bpmn/invalid/non-executable-process.bpmn": (REJECTED, "no executable process"),
    "spiffworkflow/bpmn/lanes.bpmn": (DEPLOYABLE, ["lanes"]),
    "spiffworkflow/bpmn/sequential_multiinstance_loop_input.bpmn": (DEPLOYABLE, ["main"]),
    "spiffworkflow/bpmn/standard_loop.bpmn": (DEPLOYABLE, ["main"]),
    "spiffworkflow/bpmn/timer-non-interrupt-boundary.bpmn": (DEPLOYABLE, ["NonInterruptTimer"]),
    "spiffworkflow/bpmn/timer.bpmn": (DEPLOYABLE, ["timer"]),
    "spiffworkflow/bpmn/transaction.bpmn": (DEPLOYABLE, ["Main_Process"]),
    "spiffworkflow/bpmn/uncaught_escalation.bpmn": (DEPLOYABLE, ["top_level"]),
    "spiffworkflow/camunda/ExclusiveGatewayIfElseAndDecision.bpmn": (DEPLOYABLE, ["Process_1"]),
    "spiffworkflow/spiff/business_rule_task.bpmn": (DEPLOYABLE, ["Process_bd2e724"]),
    NESTED: (REJECTED, "process id 'Level2' is already declared in call_activity_level_2.bpmn"),
}

# Warnings per set, counted by rule; a set not listed gets none. Warnings never stop a deployment.
NO_LANE, NO_FORM, NO_DEFAULT, UNREACHABLE = ("in no named lane", "names no form", "has no default flow",
                                             "no path of sequence flows reaches")
EXPECTED_WARNINGS: dict[str, dict[str, int]] = {
    "bpmn-js-examples/kitchen-sink.bpmn": {NO_LANE: 2, NO_FORM: 1, UNREACHABLE: 2},
    "bpmn-js-examples/nested-subprocesses.bpmn": {NO_LANE: 5, NO_FORM: 5},
    "miwg/reference/C.1.0.bpmn": {NO_FORM: 4, NO_DEFAULT: 2},
    "miwg/reference/C.3.0.bpmn": {NO_LANE: 4, NO_FORM: 4},
    "miwg/reference/C.4.0.bpmn": {NO_LANE: 9, NO_FORM: 18},
    "miwg/reference/C.7.0.bpmn": {NO_FORM: 3},
    "miwg/reference/C.9.0.bpmn": {NO_LANE: 1, NO_FORM: 1, NO_DEFAULT: 1},
    "miwg/reference/C.9.1.bpmn": {NO_LANE: 1, NO_FORM: 1},
    # Its lanes list ids without the "Approvals." prefix its tasks carry, so SpiffWorkflow finds no lane.
    "spiffworkflow/bpmn/Approvals.bpmn": {NO_LANE: 10},
    "spiffworkflow/bpmn/boundary_timer_on_task.bpmn": {NO_LANE: 1, NO_FORM: 1},
    "spiffworkflow/bpmn/exclusive_gateway_no_default.bpmn": {NO_DEFAULT: 1},
    "spiffworkflow/bpmn/inclusive_gateway.bpmn": {NO_LANE: 1, NO_FORM: 1, NO_DEFAULT: 1},
    "spiffworkflow/bpmn/lanes.bpmn": {NO_FORM: 3},  # Camunda forms, which Casework does not show
    "spiffworkflow/bpmn/timer-non-interrupt-boundary.bpmn": {NO_LANE: 2, NO_FORM: 2},
    "spiffworkflow/bpmn/transaction.bpmn": {NO_LANE: 2, NO_FORM: 2},
}

# The nested call-activity set has several faults; each must be reported, located.
NESTED_PROBLEMS = {
    ("call_activity_level_2b.bpmn", "Level2"): "process id 'Level2' is already declared",
    ("call_activity_level_3.bpmn", "Activity_12zat0d"): "call activity makes process 'Level3' call itself",
    ("call_activity_nested.bpmn", "Activity_0gg4414"): "calls decision 'Level2c', which no DMN file",
    ("call_activity_nested.bpmn", "Activity_0rkbhbz"): "calls process 'Level2b', which no diagram",
}


def corpus_sets() -> dict[str, catalog.DiagramSet]:
    sets = {}
    for bpmn in sorted(CORPUS.rglob("*.bpmn")):
        relative = bpmn.relative_to(CORPUS).as_posix()
        if relative.startswith(NESTED + "/"):
            continue
        files = {bpmn.name: bpmn.read_bytes()}
        files.update({dmn.name: dmn.read_bytes() for dmn in bpmn.parent.glob("*.dmn")})
        sets[relative] = catalog.DiagramSet(bpmn.stem, files)
    if (CORPUS / NESTED).is_dir():
        sets[NESTED] = catalog.read_diagram_set(CORPUS / NESTED)
    return sets


SETS = corpus_sets()


def test_every_corpus_file_has_an_expected_outcome():
    assert sorted(SETS) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(SETS))
def test_the_catalog_deploys_or_refuses_with_located_problems(name):
    diagram_set = SETS[name]
    try:
        bundles = catalog.build_bundles(diagram_set)
    except DiagramError as exc:
        assert exc.problems
        assert all(problem.file in diagram_set.files for problem in exc.problems if problem.file)
        assert any(problem.file for problem in exc.problems)
        outcome, detail = REJECTED, exc.problems
    else:
        outcome, detail = DEPLOYABLE, bundles

    expected_outcome, expected_detail = EXPECTED[name]
    assert outcome == expected_outcome, detail
    if outcome == REJECTED:
        assert any(expected_detail in problem.message for problem in detail), detail
        assert [problem for problem in catalog.validate(diagram_set) if problem.is_error] == detail
    else:
        assert sorted(bundles) == expected_detail
        for bundle in bundles.values():
            workflow = BpmnWorkflow(bundle.spec, bundle.subprocess_specs)
            assert workflow.spec is bundle.spec
            assert not workflow.is_completed()


def test_each_fault_of_the_nested_call_activity_set_is_located():
    problems = catalog.validate(SETS[NESTED])
    located = {(problem.file, problem.element_id): problem for problem in problems}
    for place, fragment in NESTED_PROBLEMS.items():
        assert place in located, problems
        assert fragment in located[place].message
        assert located[place].line


def test_deployed_corpus_processes_rebuild_from_their_files(monkeypatch):
    monkeypatch.setattr(catalog, "_bundle_cache", OrderedDict())
    for name, (outcome, process_ids) in EXPECTED.items():
        if outcome == DEPLOYABLE:
            for process_id in process_ids:
                rebuilt = catalog.bundle_from_files(process_id, SETS[name].files)
                assert rebuilt.spec.name == process_id


@pytest.mark.parametrize("name", sorted(SETS))
def test_each_set_gets_the_expected_warnings_located_after_its_errors(name):
    problems = catalog.validate(SETS[name])
    warnings = [problem for problem in problems if not problem.is_error]
    assert problems[len(problems) - len(warnings):] == warnings, "errors come first"
    rules = Counter(next((rule for rule in (NO_LANE, NO_FORM, NO_DEFAULT, UNREACHABLE) if rule in w.message), w.message)
                    for w in warnings)
    assert rules == Counter(EXPECTED_WARNINGS.get(name, {}))
    assert all(w.file in SETS[name].files and w.element_id and w.line for w in warnings)
    assert all(str(w).split(": ", 1)[1].startswith("warning: ") for w in warnings)


@pytest.mark.parametrize("name", [name for name, (outcome, _) in EXPECTED.items() if outcome == DEPLOYABLE])
def test_a_task_is_warned_about_exactly_when_spiffworkflow_gives_it_no_lane(name):
    unlaned = {w.element_id for w in catalog.validate(SETS[name]) if NO_LANE in w.message}
    bundles = catalog.build_bundles(SETS[name])
    human = {task.bpmn_id: task.lane for bundle in bundles.values()
             for spec in (bundle.spec, *bundle.subprocess_specs.values()) for task in spec.task_specs.values()
             if type(task).__name__ in ("UserTask", "ManualTask")}
    assert unlaned == {task_id for task_id, lane in human.items() if not lane}
