"""Moving a running case onto a newer version of its diagrams, and what differs between versions (no database)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from workflows import catalog
from workflows.engine import Engine
from workflows.engine_migration import migrate
from workflows.errors import EngineFailure, MigrationRefused
from workflows.process_tests import simulation
from workflows.process_tests.model import load_process_test
from workflows.process_tests.runner import run_process_test
from workflows.versions import diff_versions

from tests.unit.test_engine import T0

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
"""

# review (due in a day) -> a day later (timer) -> follow up -> end
STAY = HEAD + """  <bpmn:process id="stay" name="Stay" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="Review">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="dueIn" value="PT24H" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:intermediateCatchEvent id="a_day_later" name="A day later"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:timerEventDefinition id="t1"><bpmn:timeDuration>"PT24H"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:userTask id="follow_up" name="Follow up"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review" />
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="a_day_later" />
    <bpmn:sequenceFlow id="f3" sourceRef="a_day_later" targetRef="follow_up" />
    <bpmn:sequenceFlow id="f4" sourceRef="follow_up" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
REVIEW_DUE = '<spiffworkflow:property name="dueIn" value="PT24H" />'
TIMER = '<bpmn:timeDuration>"PT24H"</bpmn:timeDuration>'
# v2 inserts a double check after the review
DOUBLE_CHECK = [
    ('<bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="a_day_later" />',
     '<bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="double_check" />'
     '<bpmn:sequenceFlow id="f2b" sourceRef="double_check" targetRef="a_day_later" />'),
    ('<bpmn:intermediateCatchEvent id="a_day_later" name="A day later"><bpmn:incoming>f2</bpmn:incoming>',
     '<bpmn:userTask id="double_check" name="Double check"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f2b</bpmn:outgoing>'
     '</bpmn:userTask><bpmn:intermediateCatchEvent id="a_day_later" name="A day later"><bpmn:incoming>f2b</bpmn:incoming>'),
]
# v2 goes from the timer straight to the end
WITHOUT_FOLLOW_UP = [
    ('<bpmn:userTask id="follow_up" name="Follow up"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>', ""),
    ('<bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming>', '<bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming>'),
    ('<bpmn:sequenceFlow id="f3" sourceRef="a_day_later" targetRef="follow_up" />',
     '<bpmn:sequenceFlow id="f3" sourceRef="a_day_later" targetRef="end" />'),
    ('<bpmn:sequenceFlow id="f4" sourceRef="follow_up" targetRef="end" />', ""),
]
# v2 starts at the timer: there is no review any more
WITHOUT_REVIEW = [
    ('<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>',
     '<bpmn:startEvent id="start"><bpmn:outgoing>f2</bpmn:outgoing></bpmn:startEvent>'),
    ('<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review" />', ""),
    ('<bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="a_day_later" />',
     '<bpmn:sequenceFlow id="f2" sourceRef="start" targetRef="a_day_later" />'),
]
REVIEW_LATE = [(
    '<bpmn:intermediateCatchEvent id="a_day_later"',
    '<bpmn:boundaryEvent id="review_late" name="Review late" attachedToRef="review" cancelActivity="false">'
    '<bpmn:timerEventDefinition id="t2"><bpmn:timeDuration>"PT8H"</bpmn:timeDuration></bpmn:timerEventDefinition>'
    '</bpmn:boundaryEvent><bpmn:intermediateCatchEvent id="a_day_later"',
)]

# a referral: assess (a called process) -> book -> end
REFERRAL = HEAD + """  <bpmn:process id="referral" name="Referral" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:callActivity id="assess" name="Assess" calledElement="assessment"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:callActivity>
    <bpmn:userTask id="book" name="Book"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="assess" />
    <bpmn:sequenceFlow id="f2" sourceRef="assess" targetRef="book" />
    <bpmn:sequenceFlow id="f3" sourceRef="book" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
ASSESSMENT = HEAD + """  <bpmn:process id="assessment" name="Assessment" isExecutable="true">
    <bpmn:startEvent id="a_start"><bpmn:outgoing>a1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="assess_needs" name="Assess needs">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="dueIn" value="PT4H" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>a1</bpmn:incoming><bpmn:outgoing>a2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="a_end"><bpmn:incoming>a2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="a1" sourceRef="a_start" targetRef="assess_needs" />
    <bpmn:sequenceFlow id="a2" sourceRef="assess_needs" targetRef="a_end" />
  </bpmn:process>
</bpmn:definitions>
"""

# one call per provider, in parallel -> tally -> end
CALLS = HEAD + """  <bpmn:process id="calls" name="Calls" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="call_provider" name="Call provider"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:multiInstanceLoopCharacteristics>
        <bpmn:loopDataInputRef>providers</bpmn:loopDataInputRef><bpmn:loopDataOutputRef>answers</bpmn:loopDataOutputRef>
        <bpmn:inputDataItem id="provider" name="provider" /><bpmn:outputDataItem id="answer" name="answer" />
      </bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>
    <bpmn:userTask id="tally" name="Tally"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call_provider" />
    <bpmn:sequenceFlow id="f2" sourceRef="call_provider" targetRef="tally" />
    <bpmn:sequenceFlow id="f3" sourceRef="tally" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def edited(xml: str, replacements: list[tuple[str, str]]) -> str:
    for old, new in replacements:
        assert old in xml, old
        xml = xml.replace(old, new)
    return xml


def stay(replacements: list[tuple[str, str]] = ()):
    return catalog.build_bundles(catalog.DiagramSet("s", {"stay.bpmn": edited(STAY, list(replacements)).encode()}))["stay"]


def referral(assessment: str = ASSESSMENT, **files: str):
    found = {"referral.bpmn": REFERRAL.encode(), "assessment.bpmn": assessment.encode()}
    found.update({path: text.encode() for path, text in files.items()})
    return catalog.build_bundles(catalog.DiagramSet("r", found))["referral"]


@pytest.fixture(scope="module")
def engine():
    return Engine(script_time_limit=0.5)


def stored(engine, bundle, run):
    """The case as a handler loads it: serialised, then resumed."""
    return engine.resume(bundle, run.serialize())


def at_review(engine):
    bundle = stay()
    return bundle, stored(engine, bundle, engine.start(bundle, data={"patient": "Ada"}, now=T0))


def at_timer(engine):
    bundle, run = at_review(engine)
    [review] = run.ready_tasks()
    run.complete_task(review.task_ref, {"criteria_met": True}, now=T0 + timedelta(hours=1))
    return bundle, stored(engine, bundle, run)


class TestReadyTasks:
    def test_a_ready_task_whose_due_rule_changed_keeps_its_id_and_data_and_takes_the_new_rule(self, engine):
        _, run = at_review(engine)
        [before] = run.ready_tasks()
        moved = migrate(run, bundle=stay([(REVIEW_DUE, REVIEW_DUE.replace("PT24H", "PT8H"))]), version=2)
        [after] = moved.run.ready_tasks()
        assert after.task_ref == before.task_ref and after.properties["dueIn"] == "PT8H"
        assert moved.run.data()["patient"] == "Ada"
        assert [(c.element_id, c.changes) for c in moved.changed_steps] == [("review", ["due rule"])]

    def test_the_case_goes_on_along_the_new_version_after_its_current_step(self, engine):
        _, run = at_review(engine)
        v2 = stay(DOUBLE_CHECK)
        moved = migrate(run, bundle=v2, version=2).run
        [review] = moved.ready_tasks()
        moved.complete_task(review.task_ref, {}, now=T0 + timedelta(hours=1))
        assert [task.element_id for task in moved.ready_tasks()] == ["double_check"]
        assert moved.waiting_timers() == []

    def test_predicted_steps_the_new_version_removes_are_dropped_and_the_case_ends_without_them(self, engine):
        _, run = at_review(engine)
        moved = migrate(run, bundle=stay(WITHOUT_FOLLOW_UP), version=2).run
        [review] = moved.ready_tasks()
        moved.complete_task(review.task_ref, {}, now=T0)
        moved = stored(engine, stay(WITHOUT_FOLLOW_UP), moved)
        assert moved.fire_due_timers(now=T0 + timedelta(hours=24))
        assert moved.completed and moved.ready_tasks() == []

    def test_a_case_at_a_step_the_new_version_removes_is_refused_with_its_name(self, engine):
        _, run = at_review(engine)
        with pytest.raises(MigrationRefused, match=r"The case has reached 'Review' \(review\), which version 2 removes"):
            migrate(run, bundle=stay(WITHOUT_REVIEW), version=2)

    def test_a_step_given_a_boundary_event_while_the_case_is_at_it_is_refused(self, engine):
        _, run = at_review(engine)
        with pytest.raises(MigrationRefused, match=r"'Review' \(review\), whose boundary events version 3 changes"):
            migrate(run, bundle=stay(REVIEW_LATE), version=3)

    def test_a_failed_step_must_be_resolved_before_the_case_moves(self, engine):
        bundle = catalog.build_bundles(catalog.DiagramSet("s", {"stay.bpmn": edited(STAY, [(
            '<bpmn:intermediateCatchEvent id="a_day_later" name="A day later"><bpmn:incoming>f2</bpmn:incoming>',
            '<bpmn:scriptTask id="score" name="Score"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f2s</bpmn:outgoing>'
            '<bpmn:script>score = 10 / zero</bpmn:script></bpmn:scriptTask>'
            '<bpmn:sequenceFlow id="f2s" sourceRef="score" targetRef="a_day_later" />'
            '<bpmn:intermediateCatchEvent id="a_day_later" name="A day later"><bpmn:incoming>f2s</bpmn:incoming>'),
            ('targetRef="a_day_later" />\n    <bpmn:sequenceFlow id="f3"', 'targetRef="score" />\n    <bpmn:sequenceFlow id="f3"'),
        ]).encode()}))["stay"]
        run = engine.start(bundle, data={"zero": 0}, now=T0)
        [review] = run.ready_tasks()
        with pytest.raises(EngineFailure):
            run.complete_task(review.task_ref, {}, now=T0)
        with pytest.raises(MigrationRefused, match=r"'Score' \(score\) failed: resolve the failed step first"):
            migrate(run, bundle=bundle, version=2)


    def test_the_instances_of_a_running_multi_instance_step_still_gather_on_the_new_version(self, engine):
        def calls(name: str):
            return catalog.build_bundles(catalog.DiagramSet("c", {"calls.bpmn": CALLS.replace(
                'name="Tally"', f'name="{name}"').encode()}))["calls"]
        v1 = calls("Tally")
        run = stored(engine, v1, engine.start(v1, data={"providers": ["Oak Manor", "Elm Court"]}, now=T0))
        moved = migrate(run, bundle=calls("Tally the answers"), version=2).run
        for index, task in enumerate(moved.ready_tasks()):
            moved.complete_task(task.task_ref, {"answer": f"answer {index}"}, now=T0)
        assert [task.title for task in moved.ready_tasks()] == ["Tally the answers"]
        assert moved.data()["answers"] == ["answer 0", "answer 1"]


class TestWaitingTimers:
    def test_an_unchanged_waiting_timer_keeps_its_due_time(self, engine):
        _, run = at_timer(engine)
        [before] = run.waiting_timers()
        v2 = stay([("<bpmn:userTask id=\"follow_up\" name=\"Follow up\">", "<bpmn:userTask id=\"follow_up\" name=\"Call back\">")])
        moved = migrate(run, bundle=v2, version=2)
        assert moved.run.waiting_timers() == [before] and before.due_at == T0 + timedelta(hours=25)
        assert moved.changed_steps == [], "the renamed step lies ahead: no step the case is at changed"
        assert moved.run.fire_due_timers(now=T0 + timedelta(hours=25))
        assert [task.title for task in moved.run.ready_tasks()] == ["Call back"]

    def test_a_waiting_timer_whose_definition_changed_is_refused(self, engine):
        _, run = at_timer(engine)
        with pytest.raises(MigrationRefused) as refused:
            migrate(run, bundle=stay([(TIMER, TIMER.replace("PT24H", "PT48H"))]), version=2)
        assert "'A day later' (a_day_later), whose timer version 2 changes" in refused.value.message
        assert "move the token or let the timer fire first" in refused.value.message


class TestCalledProcesses:
    def test_a_called_process_the_case_is_inside_moves_onto_its_new_spec(self, engine):
        v1 = referral()
        run = stored(engine, v1, engine.start(v1, data={}, now=T0))
        [before] = run.ready_tasks()
        v2 = referral(ASSESSMENT.replace('value="PT4H"', 'value="PT2H"'))
        moved = migrate(run, bundle=v2, version=2)
        [after] = moved.run.ready_tasks()
        assert (after.task_ref, after.properties["dueIn"]) == (before.task_ref, "PT2H")
        assert [(c.process_id, c.element_id, c.changes) for c in moved.changed_steps] == [
            ("assessment", "assess_needs", ["due rule"])]
        moved.run.complete_task(after.task_ref, {}, now=T0)
        assert [task.element_id for task in moved.run.ready_tasks()] == ["book"]

    def test_a_called_process_the_new_version_no_longer_has_is_refused(self, engine):
        v1 = referral()
        run = stored(engine, v1, engine.start(v1, data={}, now=T0))
        renamed = ASSESSMENT.replace('id="assessment"', 'id="needs_assessment"')
        v2 = catalog.build_bundles(catalog.DiagramSet("r", {
            "referral.bpmn": REFERRAL.replace('calledElement="assessment"', 'calledElement="needs_assessment"').encode(),
            "assessment.bpmn": renamed.encode()}))["referral"]
        with pytest.raises(MigrationRefused, match=r"'Assess' \(assess\), whose process 'assessment' version 2 no longer has"):
            migrate(run, bundle=v2, version=2)

    def test_a_bundle_of_another_process_is_refused(self, engine):
        _, run = at_review(engine)
        with pytest.raises(MigrationRefused, match="of the process 'referral', not of 'stay'"):
            migrate(run, bundle=referral(), version=2)


class TestVersionDiff:
    def test_added_removed_and_changed_elements_are_listed_with_what_changed_in_words(self):
        v2 = stay([*DOUBLE_CHECK, (REVIEW_DUE, REVIEW_DUE.replace("PT24H", "PT8H")), (TIMER, TIMER.replace("24", "48")),
                   *WITHOUT_FOLLOW_UP])
        diff = diff_versions(old=stay(), new=v2)
        assert [(c.element_id, c.kind) for c in diff.added] == [("double_check", "user task")]
        assert [(c.element_id, c.name, c.kind, c.file) for c in diff.removed] == [
            ("follow_up", "Follow up", "user task", "stay.bpmn")]
        changed = {c.element_id: c.changes for c in diff.changed}
        assert changed["review"] == ["due rule", "outgoing flows"]
        assert changed["a_day_later"] == ["timer", "incoming flows", "outgoing flows"]
        assert diff.summary == "3 changed, 1 added, 1 removed"
        assert all(c.element_id for c in diff.changed), "SpiffWorkflow's own specs are left out"

    def test_a_form_whose_file_changed_under_the_same_name_counts_as_a_changed_form(self):
        with_form = edited(ASSESSMENT, [(REVIEW_DUE.replace("PT24H", "PT4H"), REVIEW_DUE.replace("PT24H", "PT4H") +
                                         '<spiffworkflow:property name="formJsonSchemaFilename" value="needs.schema.json" />')])
        old = referral(with_form, **{"forms/needs.schema.json": '{"type": "object"}'})
        new = referral(with_form, **{"forms/needs.schema.json": '{"type": "object", "required": ["need"]}'})
        [change] = diff_versions(old=old, new=new).changed
        assert (change.process_id, change.element_id, change.changes) == ("assessment", "assess_needs", ["form"])

    def test_a_multi_instance_step_is_listed_once_as_the_diagram_draws_it(self):
        def calls(xml: str):
            return catalog.build_bundles(catalog.DiagramSet("c", {"calls.bpmn": xml.encode()}))["calls"]
        diff = diff_versions(old=calls(CALLS), new=calls(CALLS.replace('name="Call provider"', 'name="Ring provider"')))
        assert [(c.element_id, c.name, c.kind, c.changes) for c in diff.changed] == [
            ("call_provider", "Ring provider", "multi-instance user task", ["name"])]

    def test_the_same_diagrams_make_no_change(self):
        assert diff_versions(old=stay(), new=stay()).summary == "no change to the diagrams"


class TestRealisticCases:
    @pytest.mark.parametrize("folder, test_file", [
        ("acute_hospital", "acute_stay_medicare_inpatient_home.yaml"),
        ("inpatient_rehab", "irf_interrupted_stay_not_back.yaml"),
    ])
    def test_a_case_moved_after_every_step_to_a_fresh_parse_of_its_diagrams_plays_out_the_same(
            self, engine, monkeypatch, folder, test_file):
        root = Path(__file__).resolve().parents[2] / "bpmn"
        diagram_set = catalog.with_dependencies(catalog.read_diagram_set(root / folder), catalog.find_diagram_sets(root))
        bundles = catalog.build_bundles(diagram_set)
        test = load_process_test(test_file, (root / folder / "tests" / test_file).read_bytes())
        # One byte more per diagram: the same process, parsed again into new spec objects.
        twin = catalog.bundle_from_files(test.process, {
            path: data + (b"\n" if path.endswith(".bpmn") else b"") for path, data in diagram_set.files.items()})
        settle, moves = simulation.SimulatedCase._settle, []

        def settle_then_migrate(case, run):
            settle(case, run)
            if not case.completed:
                other = twin if case.bundle is not twin else bundles[test.process]
                moved = migrate(engine.resume(case.bundle, case.state), bundle=other, version=len(moves) + 2)
                moves.append(moved.changed_steps)
                case.bundle, case.state = other, moved.run.serialize()
        monkeypatch.setattr(simulation.SimulatedCase, "_settle", settle_then_migrate)

        outcome = run_process_test(test, bundles, engine)
        assert outcome.passed, outcome.failures
        assert len(moves) > 5 and all(changes == [] for changes in moves)
