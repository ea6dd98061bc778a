"""The diagram catalog: reading sets, refusing bad diagrams with located problems, building bundles."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from workflows import catalog
from workflows.catalog import DiagramSet
from workflows.errors import DiagramError, DiagramProblem
from workflows.timers import ClockedDurationTimerEventDefinition

DIAGRAMS = Path(__file__).resolve().parents[1] / "data" / "diagrams"

SPIFF_DEFINITIONS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"\n'
    '    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"\n'
    '    xmlns:camunda="http://camunda.org/schema/1.0/bpmn"\n'
    '    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"\n'
    '    id="defs" targetNamespace="http://casework.example/bpmn">\n'
    "{processes}\n"
    "</bpmn:definitions>\n"
)


def process(process_id: str, *elements: str, executable: str = "true") -> str:
    """A process running start -> the given elements, in order -> end; ids are prefixed by the process id."""
    start, end = f"{process_id}_start", f"{process_id}_end"
    chain, body = [start], [f'<bpmn:startEvent id="{start}"/>']
    for element in elements:
        chain.append(element.split('id="', 1)[1].split('"', 1)[0])
        body.append(element)
    chain.append(end)
    body.append(f'<bpmn:endEvent id="{end}"/>')
    body += [
        f'<bpmn:sequenceFlow id="{process_id}_to_{target}" sourceRef="{source}" targetRef="{target}"/>'
        for source, target in zip(chain, chain[1:])
    ]
    lines = "\n    ".join(body)
    return f'  <bpmn:process id="{process_id}" isExecutable="{executable}">\n    {lines}\n  </bpmn:process>'


def bpmn(*processes: str) -> bytes:
    return SPIFF_DEFINITIONS.format(processes="\n".join(processes)).encode()


def timer_event(kind: str, expression: str) -> str:
    return (
        f'<bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition id="wait_timer">'
        f'<bpmn:{kind} xsi:type="bpmn:tFormalExpression">{expression}</bpmn:{kind}>'
        f"</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
    )


def user_task(task_id: str, **properties: str) -> str:
    props = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in properties.items())
    return (
        f'<bpmn:userTask id="{task_id}"><bpmn:extensionElements><spiffworkflow:properties>{props}'
        f"</spiffworkflow:properties></bpmn:extensionElements></bpmn:userTask>"
    )


def problems_of(files: dict[str, bytes]) -> list[DiagramProblem]:
    with pytest.raises(DiagramError) as raised:
        catalog.build_bundles(DiagramSet("test", files))
    assert raised.value.problems, "a DiagramError must list its problems"
    return raised.value.problems


def only_problem(files: dict[str, bytes]) -> DiagramProblem:
    problems = problems_of(files)
    assert len(problems) == 1, problems
    return problems[0]


class TestReadingDiagramSets:
    def test_a_folder_is_read_with_relative_forward_slash_paths(self):
        intake = catalog.read_diagram_set(DIAGRAMS / "intake")
        assert intake.name == "intake"
        assert sorted(intake.files) == ["forms/intake.schema.json", "forms/intake.uischema.json", "intake.bpmn"]
        assert intake.files["intake.bpmn"] == (DIAGRAMS / "intake" / "intake.bpmn").read_bytes()

    def test_every_subfolder_holding_diagrams_is_a_set_sorted_by_name(self):
        assert [s.name for s in catalog.find_diagram_sets(DIAGRAMS)] == ["common", "intake", "referral", "utilization_review"]

    def test_a_set_keeps_its_own_copy_of_the_files(self):
        files = {"x.bpmn": b"1"}
        diagram_set = DiagramSet("a", files)
        before = diagram_set.content_hash
        files["x.bpmn"] = b"2"
        assert diagram_set.files == {"x.bpmn": b"1"}
        assert DiagramSet("a", {"x.bpmn": b"1"}).content_hash == before

    def test_content_hash_depends_on_paths_and_bytes_not_order(self):
        one = DiagramSet("a", {"x.bpmn": b"1", "forms/y.json": b"{}"})
        same = DiagramSet("b", {"forms/y.json": b"{}", "x.bpmn": b"1"})
        changed = DiagramSet("a", {"x.bpmn": b"2", "forms/y.json": b"{}"})
        renamed = DiagramSet("a", {"z.bpmn": b"1", "forms/y.json": b"{}"})
        assert one.content_hash == same.content_hash == one.content_hash
        assert len(one.content_hash) == 64
        assert changed.content_hash != one.content_hash != renamed.content_hash


class TestBuildingBundles:
    def test_a_valid_set_builds_one_bundle_with_its_forms_and_clocked_timers(self):
        bundles = catalog.build_bundles(catalog.read_diagram_set(DIAGRAMS / "intake"))
        assert list(bundles) == ["intake"]
        bundle = bundles["intake"]
        assert (bundle.name, bundle.flavour, bundle.subprocess_specs) == ("Patient intake", "spiff", {})
        assert bundle.forms["intake.schema.json"]["required"] == ["mrn"]
        assert bundle.forms["intake.uischema.json"] == {"ui:order": ["mrn", "admitted_on"]}
        record = bundle.spec.task_specs["record_intake"]
        assert catalog.user_task_form(bundle, record) == ("intake.schema.json", "intake.uischema.json")
        assert catalog.user_task_form(bundle, bundle.spec.task_specs["chase_intake"]) == (None, None)
        timer = bundle.spec.task_specs["intake_overdue"].event_definition
        assert isinstance(timer, ClockedDurationTimerEventDefinition)
        assert BpmnWorkflow(bundle.spec, bundle.subprocess_specs).spec is bundle.spec

    def test_validate_lists_no_error_for_a_deployable_set_only_its_warnings(self):
        problems = catalog.validate(catalog.read_diagram_set(DIAGRAMS / "intake"))
        assert [(p.element_id, p.severity) for p in problems] == [
            ("record_intake", "warning"), ("chase_intake", "warning"), ("chase_intake", "warning")]

    def test_a_set_with_only_warnings_deploys(self):
        files = {"a.bpmn": bpmn(process("main", '<bpmn:userTask id="review"/>'))}
        assert {p.severity for p in catalog.validate(DiagramSet("t", files))} == {"warning"}
        assert list(catalog.build_bundles(DiagramSet("t", files))) == ["main"]

    def test_errors_come_first_then_warnings_each_by_file_and_line(self):
        files = {"b.bpmn": bpmn(process("main", '<bpmn:userTask id="review"/>',
                                        timer_event("timeDuration", "PT1H"))),
                 "a.bpmn": bpmn(process("other", '<bpmn:userTask id="check"/>', executable="false"),
                                process("broken", '<bpmn:callActivity id="c" calledElement="x"/>'))}
        problems = catalog.validate(DiagramSet("t", files))
        assert [(p.severity, p.file, p.element_id) for p in problems] == [
            ("error", "a.bpmn", "c"), ("error", "b.bpmn", "wait"),
            ("warning", "b.bpmn", "review"), ("warning", "b.bpmn", "review")]
        with pytest.raises(DiagramError) as raised:
            catalog.build_bundles(DiagramSet("t", files))
        assert [p.element_id for p in raised.value.problems] == ["c", "wait"]

    def test_a_process_called_by_another_is_not_deployed_on_its_own(self):
        files = {"a.bpmn": bpmn(process("main", '<bpmn:callActivity id="call" calledElement="helper"/>'),
                                process("helper"))}
        bundles = catalog.build_bundles(DiagramSet("test", files))
        assert list(bundles) == ["main"]
        assert list(bundles["main"].subprocess_specs) == ["helper"]

    def test_a_camunda_diagram_is_parsed_with_the_camunda_parser(self):
        task = '<bpmn:userTask id="review" camunda:formKey="review"/>'
        bundles = catalog.build_bundles(DiagramSet("test", {"a.bpmn": bpmn(process("main", task))}))
        assert bundles["main"].flavour == "camunda"


class TestRefusingBadXml:
    def test_malformed_xml_names_the_file_and_line(self):
        broken = b'<?xml version="1.0"?>\n<bpmn:definitions xmlns:bpmn="x">\n  <oops>\n</bpmn:definitions>\n'
        problem = only_problem({"stay.bpmn": broken})
        assert (problem.file, problem.line) == ("stay.bpmn", 4)
        assert "not well-formed XML" in problem.message

    def test_a_billion_laughs_doctype_is_refused(self):
        laughs = (b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
                  b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n<lolz>&lol2;</lolz>\n')
        problem = only_problem({"laughs.bpmn": laughs})
        assert (problem.file, problem.line) == ("laughs.bpmn", 2)
        assert "DOCTYPE" in problem.message

    def test_an_external_entity_is_refused_without_being_read(self):
        xxe = (b'<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
               + bpmn(process("main")).split(b"\n", 1)[1].replace(b'id="defs"', b'id="defs" name="&secret;"'))
        problem = only_problem({"xxe.bpmn": xxe})
        assert "DOCTYPE" in problem.message and "root:" not in problem.message

    def test_a_schema_invalid_file_gets_a_clean_message(self):
        invalid = bpmn(process("main", '<bpmn:task id="t" bogus:x="1" xmlns:bogus="b"><bpmn:nonsense/></bpmn:task>'))
        problem = only_problem({"a.bpmn": invalid})
        assert problem.file == "a.bpmn" and problem.line
        assert problem.message.startswith("the file does not follow the BPMN 2.0 schema")


class TestRefusingBadReferences:
    def test_a_sequence_flow_to_an_unknown_element(self):
        text = bpmn(process("main")).replace(b'targetRef="main_end"', b'targetRef="discharge"')
        problem = only_problem({"a.bpmn": text})
        assert problem.message == "sequence flow target 'discharge' is not an element of process 'main'."
        assert (problem.file, problem.element_id, problem.line) == ("a.bpmn", "main_to_main_end", 10)

    def test_a_process_id_declared_twice_across_files(self):
        problem = only_problem({"a.bpmn": bpmn(process("main")), "b.bpmn": bpmn(process("main"))})
        assert (problem.file, problem.element_id, problem.line) == ("b.bpmn", "main", 7)
        assert problem.message == (
            "process id 'main' is already declared in a.bpmn (line 7); process ids must be unique within a set.")

    def test_a_call_activity_calling_its_own_process(self):
        call = '<bpmn:callActivity id="again" calledElement="review"/>'
        files = {"a.bpmn": bpmn(process("main", '<bpmn:callActivity id="c" calledElement="review"/>'),
                                process("review", call))}
        problem = only_problem(files)
        assert (problem.element_id, problem.message) == (
            "again", "call activity makes process 'review' call itself (review -> review); "
                     "recursive call activities are not allowed.")

    def test_a_cycle_of_call_activities(self):
        files = {"a.bpmn": bpmn(process("ping", '<bpmn:callActivity id="to_pong" calledElement="pong"/>'),
                                process("pong", '<bpmn:callActivity id="to_ping" calledElement="ping"/>'))}
        messages = {p.element_id: p.message for p in problems_of(files)}
        assert "(ping -> pong -> ping)" in messages["to_pong"]
        assert "(pong -> ping -> pong)" in messages["to_ping"]

    def test_a_call_activity_to_an_undefined_process(self):
        problem = only_problem({"a.bpmn": bpmn(process("main", '<bpmn:callActivity id="c" calledElement="x"/>'))})
        assert (problem.element_id, problem.message) == (
            "c", "call activity calls process 'x', which no diagram in the set defines.")

    def test_a_business_rule_task_calling_an_undefined_decision(self):
        task = ('<bpmn:businessRuleTask id="rules"><bpmn:extensionElements><spiffworkflow:calledDecisionId>'
                "los_band</spiffworkflow:calledDecisionId></bpmn:extensionElements></bpmn:businessRuleTask>")
        problem = only_problem({"a.bpmn": bpmn(process("main", task))})
        assert (problem.element_id, problem.message) == (
            "rules", "business rule task calls decision 'los_band', which no DMN file in the set defines.")

    def test_a_set_without_an_executable_process(self):
        problem = only_problem({"a.bpmn": bpmn(process("main", executable="false"))})
        assert (problem.file, problem.element_id) == ("a.bpmn", "main")
        assert problem.message.startswith("the set has no executable process")

    def test_whatever_spiffworkflow_raises_becomes_a_located_problem(self):
        # SpiffWorkflow's Camunda parser raises KeyError for a business rule task without decisionRef.
        from workflows.compiler import SpecCompiler
        from workflows.diagram_xml import parse_xml

        text = bpmn(process("main", '<bpmn:businessRuleTask id="rules" camunda:resultVariable="r"/>'))
        root, _ = parse_xml("a.bpmn", text)
        compiler = SpecCompiler({"a.bpmn": root}, {})
        [problem] = compiler.problems
        assert (problem.file, problem.element_id, problem.line) == ("a.bpmn", "rules", 9)
        assert "KeyError" in problem.message
        assert [p.element_id for p in problems_of({"a.bpmn": text})] == ["rules"]


class TestTimerExpressions:
    @pytest.mark.parametrize("kind, expression, message", [
        ("timeDuration", "P1D", "timer duration 'P1D' must be quoted, e.g. \"P1D\"."),
        ("timeDuration", " PT24H ", "timer duration 'PT24H' must be quoted, e.g. \"PT24H\"."),
        ("timeCycle", "R6/P1D", "timer cycle 'R6/P1D' must be quoted, e.g. \"R6/P1D\"."),
        ("timeDate", "2026-01-01T00:00:00", "timer date '2026-01-01T00:00:00' must be quoted, "
                                            "e.g. \"2026-01-01T00:00:00\"."),
    ])
    def test_a_bare_iso_value_must_be_quoted(self, kind, expression, message):
        problem = only_problem({"stay.bpmn": bpmn(process("main", timer_event(kind, expression)))})
        assert (problem.file, problem.element_id, problem.line, problem.message) == ("stay.bpmn", "wait", 9, message)
        assert str(problem) == f"stay.bpmn, element 'wait', line 9: {message}"

    @pytest.mark.parametrize("kind, expression", [
        ("timeDuration", '"P1D"'), ("timeDuration", "'PT0.5S'"), ("timeCycle", '"R6/P1D"'),
        ("timeDate", '"2026-01-01T00:00:00+00:00"'), ("timeDuration", "review_interval"),
    ])
    def test_quoted_iso_values_and_expressions_are_accepted(self, kind, expression):
        assert catalog.validate(DiagramSet("t", {"a.bpmn": bpmn(process("main", timer_event(kind, expression)))})) == []

    @pytest.mark.parametrize("kind, expression, start", [
        ("timeDuration", '"P1X"', 'timer duration "P1X" is not a valid ISO 8601 duration'),
        ("timeCycle", "0 0 9 * * ?", "timer cycle '0 0 9 * * ?' is not a valid expression"),
        ("timeDate", '"P1D"', 'timer date "P1D" is not a valid ISO 8601 date and time'),
    ])
    def test_invalid_timer_expressions_are_refused(self, kind, expression, start):
        problem = only_problem({"a.bpmn": bpmn(process("main", timer_event(kind, expression)))})
        assert problem.message.startswith(start)


class TestForms:
    def test_a_missing_form_file(self):
        files = {"a.bpmn": bpmn(process("main", user_task("review", formJsonSchemaFilename="review.schema.json")))}
        problem = only_problem(files)
        assert (problem.file, problem.element_id, problem.line) == ("a.bpmn", "review", 9)
        assert problem.message == "form 'review.schema.json' was not found next to the diagram or in a forms/ folder."

    def test_a_form_that_is_not_json(self):
        files = {"a.bpmn": bpmn(process("main", user_task("review", formUiSchemaFilename="review.uischema.json"))),
                 "forms/review.uischema.json": b'{\n  "ui:order": [\n}'}
        problem = only_problem(files)
        assert (problem.file, problem.line) == ("forms/review.uischema.json", 3)
        assert problem.message.startswith("the file is not valid JSON")

    def test_an_invalid_json_schema(self):
        files = {"a.bpmn": bpmn(process("main", user_task("review", formJsonSchemaFilename="review.schema.json"))),
                 "forms/review.schema.json": b'{"type": "object", "properties": {"x": {"type": "texte"}}}'}
        problem = only_problem(files)
        assert problem.file == "forms/review.schema.json"
        assert problem.message.startswith("the form schema is not a valid JSON Schema at properties/x/type")


class TestDependencies:
    def test_a_called_process_is_copied_in_from_the_library_with_its_form(self):
        library = catalog.find_diagram_sets(DIAGRAMS)
        referral = catalog.read_diagram_set(DIAGRAMS / "referral")
        complete = catalog.with_dependencies(referral, library)
        assert sorted(complete.files) == ["common/follow_up.bpmn", "common/forms/follow_up.schema.json",
                                          "referral.bpmn"]
        assert complete.dependency_files == {"common/follow_up.bpmn", "common/forms/follow_up.schema.json"}
        bundles = catalog.build_bundles(complete)
        assert list(bundles) == ["referral"]
        assert list(bundles["referral"].subprocess_specs) == ["follow_up"]
        assert "follow_up.schema.json" in bundles["referral"].forms

    def test_a_set_missing_nothing_is_returned_unchanged(self):
        intake = catalog.read_diagram_set(DIAGRAMS / "intake")
        assert catalog.with_dependencies(intake, catalog.find_diagram_sets(DIAGRAMS)) is intake

    def test_without_the_library_the_call_is_a_problem(self):
        problems = catalog.validate(catalog.read_diagram_set(DIAGRAMS / "referral"))
        assert [(p.file, p.element_id) for p in problems] == [("referral.bpmn", "follow_up_call")]


class TestRebuildingDeployedProcesses:
    def test_bundle_from_files_gives_the_same_processes_as_the_deployment(self, monkeypatch):
        complete = catalog.with_dependencies(catalog.read_diagram_set(DIAGRAMS / "referral"),
                                             catalog.find_diagram_sets(DIAGRAMS))
        deployed = catalog.build_bundles(complete)["referral"]
        monkeypatch.setattr(catalog, "_bundle_cache", OrderedDict())  # as after a restart
        files = {path: bytes(data) for path, data in complete.files.items()}
        rebuilt = catalog.bundle_from_files("referral", files)
        assert rebuilt is not deployed
        assert (rebuilt.process_id, rebuilt.name, rebuilt.flavour) == ("referral", "Referral", "spiff")
        assert rebuilt.spec.name == deployed.spec.name == "referral"
        assert sorted(rebuilt.subprocess_specs) == sorted(deployed.subprocess_specs) == ["follow_up"]
        assert rebuilt.forms == deployed.forms
        assert BpmnWorkflow(rebuilt.spec, rebuilt.subprocess_specs).spec is rebuilt.spec

    def test_bundle_from_files_is_cached_by_content(self):
        files = {"a.bpmn": bpmn(process("cached"))}
        first = catalog.bundle_from_files("cached", files)
        assert catalog.bundle_from_files("cached", dict(files)) is first
        assert catalog.bundle_from_files("cached", {"a.bpmn": files["a.bpmn"] + b"\n"}) is not first

    def test_bundle_from_files_skips_the_deployment_checks(self):
        # Stored files were checked when deployed; a stricter check later must not strand running cases.
        files = {"a.bpmn": bpmn(process("old", timer_event("timeDuration", "PT1H")))}
        assert catalog.validate(DiagramSet("t", files))
        assert catalog.bundle_from_files("old", files).spec.name == "old"

    def test_bundle_from_files_for_an_unknown_process_raises_diagram_error(self):
        with pytest.raises(DiagramError, match="'nothing' is not defined"):
            catalog.bundle_from_files("nothing", {"a.bpmn": bpmn(process("main"))})
