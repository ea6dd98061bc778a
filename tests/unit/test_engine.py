"""The engine facade: cases run at an injected time, survive serialisation, and fail loudly."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from workflows import catalog
from workflows.engine import Engine
from workflows.errors import Conflict, EngineFailure, NotFound, StalledCase

DATA = Path(__file__).resolve().parent.parent / "data" / "engine"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

SCRIPT_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="scripted" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="before" name="Before"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:scriptTask id="the_script" name="The script"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="after" name="After"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="before" />
    <bpmn:sequenceFlow id="f2" sourceRef="before" targetRef="the_script" />
    <bpmn:sequenceFlow id="f3" sourceRef="the_script" targetRef="after" />
    <bpmn:sequenceFlow id="f4" sourceRef="after" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""

STUCK_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="stuck" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:parallelGateway id="split"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>fa</bpmn:outgoing><bpmn:outgoing>fb</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:userTask id="a" name="A"><bpmn:incoming>fa</bpmn:incoming><bpmn:outgoing>fa2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="b_end"><bpmn:incoming>fb</bpmn:incoming></bpmn:endEvent>
    <bpmn:parallelGateway id="join"><bpmn:incoming>fa2</bpmn:incoming><bpmn:incoming>fc</bpmn:incoming><bpmn:outgoing>fj</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:userTask id="never" name="Never reached"><bpmn:incoming>fj</bpmn:incoming><bpmn:outgoing>fe</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>fe</bpmn:incoming></bpmn:endEvent>
    <bpmn:startEvent id="orphan_start"><bpmn:outgoing>fc</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="split" />
    <bpmn:sequenceFlow id="fa" sourceRef="split" targetRef="a" />
    <bpmn:sequenceFlow id="fb" sourceRef="split" targetRef="b_end" />
    <bpmn:sequenceFlow id="fa2" sourceRef="a" targetRef="join" />
    <bpmn:sequenceFlow id="fc" sourceRef="orphan_start" targetRef="join" />
    <bpmn:sequenceFlow id="fj" sourceRef="join" targetRef="never" />
    <bpmn:sequenceFlow id="fe" sourceRef="never" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""

JOIN_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="joined" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:parallelGateway id="split"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>fa</bpmn:outgoing><bpmn:outgoing>fb</bpmn:outgoing><bpmn:outgoing>fc</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:userTask id="a" name="A"><bpmn:incoming>fa</bpmn:incoming><bpmn:outgoing>fa2</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="b" name="B"><bpmn:incoming>fb</bpmn:incoming><bpmn:outgoing>fb2</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="c" name="C"><bpmn:incoming>fc</bpmn:incoming><bpmn:outgoing>fc2</bpmn:outgoing></bpmn:userTask>
    <bpmn:{gateway} id="join"><bpmn:incoming>fa2</bpmn:incoming><bpmn:incoming>fb2</bpmn:incoming><bpmn:incoming>fc2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:{gateway}>
    <bpmn:userTask id="after" name="After"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="split" />
    <bpmn:sequenceFlow id="fa" sourceRef="split" targetRef="a" />
    <bpmn:sequenceFlow id="fb" sourceRef="split" targetRef="b" />
    <bpmn:sequenceFlow id="fc" sourceRef="split" targetRef="c" />
    <bpmn:sequenceFlow id="fa2" sourceRef="a" targetRef="join" />
    <bpmn:sequenceFlow id="fb2" sourceRef="b" targetRef="join" />
    <bpmn:sequenceFlow id="fc2" sourceRef="c" targetRef="join" />
    <bpmn:sequenceFlow id="f3" sourceRef="join" targetRef="after" />
    <bpmn:sequenceFlow id="f4" sourceRef="after" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""

RACE_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="t">
  <bpmn:process id="race" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:eventBasedGateway id="first_of"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>fa</bpmn:outgoing><bpmn:outgoing>fb</bpmn:outgoing></bpmn:eventBasedGateway>
    <bpmn:intermediateCatchEvent id="payer_answers"><bpmn:incoming>fa</bpmn:incoming><bpmn:outgoing>fa2</bpmn:outgoing>
      <bpmn:messageEventDefinition id="m1" messageRef="payer_decision" /></bpmn:intermediateCatchEvent>
    <bpmn:intermediateCatchEvent id="payer_clock_expires"><bpmn:incoming>fb</bpmn:incoming><bpmn:outgoing>fb2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="t1"><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"P7D"</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="answered"><bpmn:incoming>fa2</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="expired"><bpmn:incoming>fb2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="first_of" />
    <bpmn:sequenceFlow id="fa" sourceRef="first_of" targetRef="payer_answers" />
    <bpmn:sequenceFlow id="fb" sourceRef="first_of" targetRef="payer_clock_expires" />
    <bpmn:sequenceFlow id="fa2" sourceRef="payer_answers" targetRef="answered" />
    <bpmn:sequenceFlow id="fb2" sourceRef="payer_clock_expires" targetRef="expired" />
  </bpmn:process>
  <bpmn:message id="payer_decision" name="payer_decision" />
</bpmn:definitions>
"""

REQUESTS_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
  <bpmn:process id="requests" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="main_task" name="Main"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="main_task" />
    <bpmn:sequenceFlow id="f2" sourceRef="main_task" targetRef="end" />
    <bpmn:subProcess id="precert_sub" triggeredByEvent="true">
      <bpmn:startEvent id="precert_start" isInterrupting="false"><bpmn:outgoing>s1</bpmn:outgoing>
        <bpmn:messageEventDefinition id="m1" messageRef="precert_request_received">
          <bpmn:extensionElements><spiffworkflow:messageVariable>precert_request</spiffworkflow:messageVariable></bpmn:extensionElements>
        </bpmn:messageEventDefinition>
      </bpmn:startEvent>
      <bpmn:scriptTask id="calc"><bpmn:incoming>s1</bpmn:incoming><bpmn:outgoing>s2</bpmn:outgoing><bpmn:script>req_id = precert_request["id"]</bpmn:script></bpmn:scriptTask>
      <bpmn:userTask id="ur_decision" name="UR"><bpmn:incoming>s2</bpmn:incoming><bpmn:outgoing>s3</bpmn:outgoing></bpmn:userTask>
      <bpmn:endEvent id="sub_end"><bpmn:incoming>s3</bpmn:incoming></bpmn:endEvent>
      <bpmn:sequenceFlow id="s1" sourceRef="precert_start" targetRef="calc" />
      <bpmn:sequenceFlow id="s2" sourceRef="calc" targetRef="ur_decision" />
      <bpmn:sequenceFlow id="s3" sourceRef="ur_decision" targetRef="sub_end" />
    </bpmn:subProcess>
  </bpmn:process>
  <bpmn:message id="precert_request_received" name="precert_request_received" />
</bpmn:definitions>
"""


@pytest.fixture(scope="module")
def bundles():
    return catalog.build_bundles(catalog.read_diagram_set(DATA))


@pytest.fixture(scope="module")
def engine():
    return Engine(script_time_limit=0.5)


def scripted_bundle(script: str):
    # Deployment refuses what the sandbox forbids; rebuilding from stored files skips those
    # checks, so these tests reach the run-time sandbox, the second line of defence.
    files = {"scripted.bpmn": SCRIPT_PROCESS.replace("{script}", script).encode()}
    return catalog.bundle_from_files("scripted", files)


def only_task(run):
    [task] = run.ready_tasks()
    return task


class TestStartingAndWorkingACase:
    def test_a_new_case_waits_at_its_first_human_task_with_lane_form_and_instructions(self, engine, bundles):
        run = engine.start(bundles["review_loop"], data={"reviews": 0, "discharged": False}, now=T0)
        task = only_task(run)
        assert (task.element_id, task.title, task.lane) == ("review", "Continued-stay review", "case_manager")
        assert task.form_ref == "review.schema.json"
        assert task.instructions == "Review the stay against criteria."
        assert task.properties["dueIn"] == "P1D"
        assert not run.completed

    def test_completing_the_task_runs_scripts_and_gateways_to_the_next_wait(self, engine, bundles):
        run = engine.start(bundles["review_loop"], data={"reviews": 0, "discharged": False}, now=T0)
        run.complete_task(only_task(run).task_ref, {"note": 1}, now=T0)
        assert run.data()["reviews"] == 1
        run.complete_task(only_task(run).task_ref, {"discharged": True}, now=T0)
        assert run.completed and run.ready_tasks() == []

    def test_completing_a_task_that_is_not_ready_is_refused(self, engine, bundles):
        run = engine.start(bundles["review_loop"], data={"reviews": 0, "discharged": False}, now=T0)
        ref = only_task(run).task_ref
        run.complete_task(ref, {}, now=T0)
        with pytest.raises(NotFound, match="not open in this case"):
            run.complete_task(ref, {}, now=T0)
        with pytest.raises(NotFound):
            run.complete_task("not-a-task-id", {}, now=T0)

    def test_completing_a_task_that_is_not_a_human_task_is_refused(self, engine, bundles):
        run = engine.start(bundles["payer_wait"], data={}, now=T0)
        run.complete_task(only_task(run).task_ref, {}, now=T0)
        [timer] = run.waiting_timers()
        with pytest.raises(Conflict, match="not a human task"):
            run.complete_task(timer.task_ref, {}, now=T0)


class TestSerialisation:
    def test_a_case_continues_after_a_round_trip_through_json(self, engine, bundles):
        run = engine.start(bundles["review_loop"], data={"reviews": 0, "discharged": False}, now=T0)
        run.complete_task(only_task(run).task_ref, {"note": 7}, now=T0)
        state = run.serialize()
        restored = engine.resume(bundles["review_loop"], state)
        assert restored.data() == run.data()
        assert only_task(restored) == only_task(run)

    def test_the_state_carries_both_serializer_versions_and_no_diagram(self, engine, bundles):
        run = engine.start(bundles["review_loop"], data={"reviews": 0, "discharged": False}, now=T0)
        stored = json.loads(run.serialize())
        assert stored["serializer_version"] == engine.serializer.spiff_version
        assert stored["casework_format"] == 1
        assert stored["spec"] == "review_loop"
        assert "subprocess_specs" not in stored

    def test_state_of_another_process_is_refused(self, engine, bundles):
        run = engine.start(bundles["review_loop"], data={"reviews": 0, "discharged": False}, now=T0)
        with pytest.raises(Exception, match="belongs to process 'review_loop'"):
            engine.resume(bundles["payer_wait"], run.serialize())


class TestTimersFollowTheInjectedClock:
    def test_a_timer_never_fires_early_and_fires_once_when_due(self, engine, bundles):
        run = engine.start(bundles["payer_wait"], data={}, now=T0)
        run.complete_task(only_task(run).task_ref, {}, now=T0)
        [timer] = run.waiting_timers()
        assert timer.due_at == T0 + timedelta(hours=24)
        assert run.fire_due_timers(now=T0 + timedelta(hours=23, minutes=59)) == []
        assert run.waiting_timers() == [timer]
        fired = run.fire_due_timers(now=T0 + timedelta(hours=24))
        assert [t.element_id for t in fired] == ["wait_a_day"]
        assert run.waiting_timers() == []
        assert run.fire_due_timers(now=T0 + timedelta(days=5)) == []

    def test_a_two_month_wait_runs_in_milliseconds(self, engine, bundles):
        run = engine.start(bundles["payer_wait"], data={}, now=T0)
        run.complete_task(only_task(run).task_ref, {}, now=T0)
        fired = run.fire_due_timers(now=T0 + timedelta(days=60))
        assert len(fired) == 1 and [m.name for m in run.waiting_messages()] == ["payer_decision"]


class TestMessages:
    def test_a_waiting_case_receives_its_message_and_moves_on(self, engine, bundles):
        run = engine.start(bundles["payer_wait"], data={}, now=T0)
        run.complete_task(only_task(run).task_ref, {}, now=T0)
        run.fire_due_timers(now=T0 + timedelta(days=1))
        run.deliver_message("payer_decision", {"approved": True, "auth_number": "A-1"}, now=T0 + timedelta(days=2))
        assert only_task(run).element_id == "follow_up"
        assert run.data()["payer_decision"] == {"approved": True, "auth_number": "A-1"}

    def test_events_after_an_event_based_gateway_are_named_as_the_diagram_shows_them(self, engine):
        bundle = catalog.build_bundles(catalog.DiagramSet("race", {"race.bpmn": RACE_PROCESS.encode()}))["race"]
        run = engine.start(bundle, data={}, now=T0)
        assert [(t.element_id, t.due_at) for t in run.waiting_timers()] == [("payer_clock_expires", T0 + timedelta(days=7))]
        assert [(m.element_id, m.name) for m in run.waiting_messages()] == [("payer_answers", "payer_decision")]
        assert run.fire_due_timers(now=T0 + timedelta(days=7))[0].element_id == "payer_clock_expires"
        assert run.completed

    def test_each_message_starts_its_own_event_sub_process_while_the_case_runs(self, engine):
        files = {"requests.bpmn": REQUESTS_PROCESS.encode()}
        bundle = catalog.build_bundles(catalog.DiagramSet("requests", files))["requests"]
        run = engine.start(bundle, data={}, now=T0)
        assert [(m.element_id, m.name) for m in run.waiting_messages()] == [("precert_start", "precert_request_received")]
        for request in (1, 2):
            run = engine.resume(bundle, run.serialize())
            run.deliver_message("precert_request_received", {"id": request}, now=T0)
        decisions = [t for t in run.ready_tasks() if t.element_id == "ur_decision"]
        assert sorted(run.task_data(t.task_ref)["req_id"] for t in decisions) == [1, 2]
        [main] = [t for t in run.ready_tasks() if t.element_id == "main_task"]
        run.complete_task(main.task_ref, {}, now=T0)
        for decision in decisions:
            run.complete_task(decision.task_ref, {}, now=T0)
        assert run.completed and run.waiting_messages() == []
        with pytest.raises(NotFound, match="not waiting for a message named 'precert_request_received'"):
            run.deliver_message("precert_request_received", {"id": 3}, now=T0)

    def test_a_message_the_case_is_not_waiting_for_is_refused(self, engine, bundles):
        run = engine.start(bundles["payer_wait"], data={}, now=T0)
        with pytest.raises(NotFound, match="not waiting for a message named 'payer_decision'"):
            run.deliver_message("payer_decision", {}, now=T0)


class TestCancel:
    def test_cancelling_leaves_nothing_ready_or_waiting(self, engine, bundles):
        run = engine.start(bundles["payer_wait"], data={}, now=T0)
        run.cancel(now=T0)
        assert run.ready_tasks() == [] and run.waiting_timers() == []


class TestLongCases:
    def test_a_review_loop_runs_past_the_library_depth_limit_with_flat_state(self, engine, bundles):
        """SpiffWorkflow's iterators stop at depth 1,000: about 333 cycles of this loop."""
        bundle = bundles["review_loop"]
        run = engine.start(bundle, data={"reviews": 0, "discharged": False}, now=T0)
        state = run.serialize()
        sizes = []
        for cycle in range(400):
            run = engine.resume(bundle, state)
            run.complete_task(only_task(run).task_ref, {"note": cycle}, now=T0)
            state = run.serialize()
            sizes.append(len(state))
        assert run.data()["reviews"] == 400
        assert only_task(run).element_id == "review"
        assert max(sizes[-50:]) <= sizes[0] * 1.1, "state must not grow with the number of cycles"
        run.complete_task(only_task(run).task_ref, {"discharged": True}, now=T0)
        assert run.completed

    def test_a_case_left_with_nothing_to_do_is_reported_as_stalled(self, engine):
        """A parallel join waiting for a branch that already ended: nothing ready, nothing to wait for."""
        files = {"stuck.bpmn": STUCK_PROCESS.encode()}
        bundle = catalog.build_bundles(catalog.DiagramSet("stuck", files))["stuck"]
        run = engine.start(bundle, data={}, now=T0)
        with pytest.raises(StalledCase, match="nothing to wait for") as stalled:
            run.complete_task(only_task(run).task_ref, {}, now=T0)
        assert stalled.value.kind == "stalled"

    @pytest.mark.parametrize("gateway", ["parallelGateway", "inclusiveGateway"])
    def test_a_three_way_join_fires_when_its_branches_finish_in_separate_actions(self, engine, gateway):
        """Pruning must keep the join's earlier (cancelled) arrivals: the join counts them and takes their data."""
        files = {"joined.bpmn": JOIN_PROCESS.replace("{gateway}", gateway).encode()}
        bundle = catalog.build_bundles(catalog.DiagramSet("joined", files))["joined"]
        state = engine.start(bundle, data={}, now=T0).serialize()
        for element_id in ("b", "a", "c"):
            run = engine.resume(bundle, state)
            [task] = [t for t in run.ready_tasks() if t.element_id == element_id]
            run.complete_task(task.task_ref, {f"{element_id}_done": True}, now=T0)
            state = run.serialize()
        run = engine.resume(bundle, state)
        assert [t.element_id for t in run.ready_tasks()] == ["after"]
        assert {k: v for k, v in run.data().items() if k.endswith("_done")} == {"a_done": True, "b_done": True, "c_done": True}


class TestTracingForProcessTests:
    def test_every_branch_into_a_join_counts_as_taken_though_the_join_cancels_earlier_arrivals(self):
        engine = Engine(trace_elements=True)
        files = {"joined.bpmn": JOIN_PROCESS.replace("{gateway}", "parallelGateway").encode()}
        bundle = catalog.build_bundles(catalog.DiagramSet("joined", files))["joined"]
        run = engine.start(bundle, data={}, now=T0)
        reached = set(run.reached)
        for element_id in ("a", "b", "c"):
            run = engine.resume(bundle, run.serialize())
            [task] = [t for t in run.ready_tasks() if t.element_id == element_id]
            run.complete_task(task.task_ref, {}, now=T0)
            reached |= run.reached
        assert {("joined", branch, "join") for branch in "abc"} <= reached
        assert {("joined", "split", branch) for branch in "abc"} <= reached
        assert {("joined", "join"), ("joined", "after")} <= reached
        assert ("joined", "end") not in reached

    def test_the_service_engine_does_not_trace(self, engine, bundles):
        assert engine.start(bundles["review_loop"], data={}, now=T0).reached == set()


class TestTheCaseRecord:
    def test_a_branch_with_a_stale_copy_does_not_undo_another_branchs_write(self, engine):
        files = {"joined.bpmn": JOIN_PROCESS.replace("{gateway}", "parallelGateway").encode()}
        bundle = catalog.build_bundles(catalog.DiagramSet("joined", files))["joined"]
        run = engine.start(bundle, data={"authorization_status": "pending"}, now=T0)
        assert run.written == {"authorization_status": "pending"}
        written = dict(run.written)
        for element_id, data in (("b", {"authorization_status": "approved"}), ("a", {"a_note": "x"}), ("c", {})):
            run = engine.resume(bundle, run.serialize())
            [task] = [t for t in run.ready_tasks() if t.element_id == element_id]
            run.complete_task(task.task_ref, data, now=T0)
            written.update(run.written)
        assert written == {"authorization_status": "approved", "a_note": "x"}


class TestScriptFailuresBecomeEngineFailures:
    @pytest.mark.parametrize("script", [
        "import os",
        "data = open('/etc/passwd').read()",
        "x = ().__class__",
        "while True:\n    pass",
    ], ids=["import", "file", "dunder", "endless-loop"])
    def test_a_forbidden_or_endless_script_fails_at_its_element(self, engine, script):
        bundle = scripted_bundle(script)
        run = engine.start(bundle, data={}, now=T0)
        started = time.monotonic()
        with pytest.raises(EngineFailure) as failure:
            run.complete_task(only_task(run).task_ref, {"entered": "by hand"}, now=T0)
        assert time.monotonic() - started < 10, "the worker must get control back"
        assert failure.value.kind == "script"
        assert failure.value.element_id == "the_script"
        assert "The script" in failure.value.message

    def test_the_engine_still_works_after_a_failed_script(self, engine):
        bad = engine.start(scripted_bundle("while True:\n    pass"), data={}, now=T0)
        with pytest.raises(EngineFailure):
            bad.complete_task(only_task(bad).task_ref, {}, now=T0)
        good = engine.start(scripted_bundle("total = 2 + 3"), data={}, now=T0)
        good.complete_task(only_task(good).task_ref, {}, now=T0)
        assert good.data()["total"] == 5 and only_task(good).element_id == "after"


class TestScriptHelpers:
    def test_get_value_reads_task_data_or_falls_back_to_a_default(self, engine):
        bundle = scripted_bundle('interval = get_value("review_interval", "P1D")\nmissing = get_value("nothing_here", 7)')
        run = engine.start(bundle, data={"review_interval": "PT12H"}, now=T0)
        run.complete_task(only_task(run).task_ref, {}, now=T0)
        assert (run.data()["interval"], run.data()["missing"]) == ("PT12H", 7)

    def test_dates_made_by_scripts_survive_serialisation(self, engine):
        bundle = scripted_bundle("admitted_on = today()\nnext_review = now() + timedelta(days=1)")
        run = engine.start(bundle, data={}, now=T0)
        run.complete_task(only_task(run).task_ref, {}, now=T0)
        restored = engine.resume(bundle, run.serialize())
        assert restored.data()["admitted_on"] == T0.date()
        assert restored.data()["next_review"] == T0 + timedelta(days=1)


FAN_OUT = b'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="fan_out_defs" targetNamespace="x">
  <bpmn:process id="fan_out" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="call_provider" name="Call a provider">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:multiInstanceLoopCharacteristics>
        <bpmn:loopDataInputRef>providers</bpmn:loopDataInputRef>
        <bpmn:inputDataItem id="provider" name="provider" />
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:userTask id="choose_provider" name="Choose a provider">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="call_provider" />
    <bpmn:sequenceFlow id="f2" sourceRef="call_provider" targetRef="choose_provider" />
    <bpmn:sequenceFlow id="f3" sourceRef="choose_provider" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>'''


class TestReloadingOnFreshlyParsedDiagrams:
    def test_a_running_multi_instance_gathers_its_instances_after_the_diagrams_are_parsed_again(self, engine, monkeypatch):
        files = {"fan_out.bpmn": FAN_OUT}
        run = engine.start(catalog.bundle_from_files("fan_out", files), data={"providers": ["a", "b"]}, now=T0)
        state = run.serialize()
        monkeypatch.setattr(catalog, "_bundle_cache", type(catalog._bundle_cache)())  # as after a restart

        run = engine.resume(catalog.bundle_from_files("fan_out", files), state)
        instances = run.ready_tasks()
        assert [task.element_id for task in instances] == ["call_provider", "call_provider"]
        for task in instances:
            run.complete_task(task.task_ref, {}, now=T0)
        assert [task.element_id for task in run.ready_tasks()] == ["choose_provider"]
