"""Validating a diagram set never runs its scripts, conditions or timer expressions.

Designers upload the diagrams; the scripts in them run only inside the sandbox, for a
case. Validation compiles them to check them and must never execute a line.
"""
from __future__ import annotations

import builtins
from pathlib import Path

import pytest
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment

from tests.conformance.test_conformance_corpus import SETS
from workflows import catalog, sandbox_guards, scripting
from workflows.catalog import DiagramSet

BPMN = Path(__file__).resolve().parents[2] / "bpmn"
ENTRY_POINTS = [
    (PythonScriptEngine, "evaluate"), (PythonScriptEngine, "execute"), (PythonScriptEngine, "call_service"),
    (scripting.RestrictedScriptEngine, "evaluate"), (TaskDataEnvironment, "evaluate"),
    (TaskDataEnvironment, "execute"), (scripting.RestrictedEnvironment, "evaluate"),
    (scripting.RestrictedEnvironment, "execute"), (scripting.RestrictedEnvironment, "_run"),
    (sandbox_guards, "_loop_guard"), (builtins, "exec"), (builtins, "eval"),
]


def bundled_sets() -> list[DiagramSet]:
    library = catalog.find_diagram_sets(BPMN)
    return [catalog.with_dependencies(diagram_set, library) for diagram_set in library]


@pytest.fixture
def executions(monkeypatch):
    """Record every call into the script engine, the sandbox's runner or Python's exec/eval."""
    for diagram_set in [*SETS.values(), *bundled_sets()]:
        catalog.validate(diagram_set)  # imports whatever validation imports lazily, before the traps
    calls = []
    for owner, name in ENTRY_POINTS:
        def trap(*args, _name=f"{getattr(owner, '__name__', owner)}.{name}", **kwargs):
            calls.append(_name)
            raise AssertionError(f"{_name} was called while validating")
        monkeypatch.setattr(owner, name, trap)
    return calls


def test_validating_every_corpus_and_bundled_set_runs_no_script(executions):
    outcomes = {name: catalog.validate(diagram_set) for name, diagram_set in SETS.items()}
    bundled = {diagram_set.name: catalog.validate(diagram_set) for diagram_set in bundled_sets()}
    assert executions == []
    assert all(not any(p.is_error for p in problems) for problems in bundled.values()), bundled
    assert not any("could not be checked" in p.message for problems in outcomes.values() for p in problems)


def hostile_diagram(marker: Path) -> bytes:
    """Every place the engine evaluates Python, each writing a file when run by plain SpiffWorkflow."""
    write = f"__import__('pathlib').Path('{marker}').write_text('ran')"
    opened = f"open('{marker}', 'w').write('ran')"
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="defs" targetNamespace="http://casework.example">
  <bpmn:process id="hostile" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:scriptTask id="script"><bpmn:extensionElements>
        <spiffworkflow:preScript>{opened}</spiffworkflow:preScript>
        <spiffworkflow:postScript>{write}</spiffworkflow:postScript>
      </bpmn:extensionElements><bpmn:script>{write}</bpmn:script></bpmn:scriptTask>
    <bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition id="wait_timer">
      <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">{opened} and "PT1H"</bpmn:timeDuration>
    </bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:exclusiveGateway id="choose" default="to_end"/>
    <bpmn:endEvent id="end"/>
    <bpmn:endEvent id="other_end"/>
    <bpmn:sequenceFlow id="to_script" sourceRef="start" targetRef="script"/>
    <bpmn:sequenceFlow id="to_wait" sourceRef="script" targetRef="wait"/>
    <bpmn:sequenceFlow id="to_choose" sourceRef="wait" targetRef="choose"/>
    <bpmn:sequenceFlow id="to_end" sourceRef="choose" targetRef="end"/>
    <bpmn:sequenceFlow id="to_other_end" sourceRef="choose" targetRef="other_end">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{opened} == 3</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
  </bpmn:process>
</bpmn:definitions>
'''.encode()


def test_a_hostile_diagram_is_refused_at_every_place_and_writes_nothing(tmp_path):
    marker = tmp_path / "ran.txt"
    hostile = DiagramSet("hostile", {"hostile.bpmn": hostile_diagram(marker)})
    problems = catalog.validate(hostile)
    refused = {(p.element_id, p.message.split(" uses ", 1)[0]) for p in problems if p.is_error}
    assert refused == {("script", "the script"), ("script", "the pre-script"), ("script", "the post-script"),
                       ("wait", "the timer duration"), ("to_other_end", "the condition")}, problems
    assert not marker.exists()


def test_the_hostile_diagram_is_refused_even_with_the_engine_trapped(executions, tmp_path):
    marker = tmp_path / "ran.txt"
    assert any(p.is_error for p in catalog.validate(DiagramSet("hostile", {"h.bpmn": hostile_diagram(marker)})))
    assert executions == [] and not marker.exists()
