"""A supervisor's repairs in the engine: correct the data and retry, skip a failed step, move a token."""
from __future__ import annotations

from datetime import timedelta

import pytest

from workflows import catalog
from workflows.errors import Conflict, EngineFailure, NotFound

from tests.unit.test_engine import RACE_PROCESS, T0, bundles, engine, only_task, scripted_bundle  # noqa: F401  (fixtures)

GUARDED_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="guarded" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="Review"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:boundaryEvent id="review_late" name="Review late" attachedToRef="review" cancelActivity="true">
      <bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:timerEventDefinition id="t1"><bpmn:timeDuration>"PT8H"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:exclusiveGateway id="route" name="Which way?" default="f_default"><bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>f_yes</bpmn:outgoing><bpmn:outgoing>f_default</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:userTask id="approved" name="Approved"><bpmn:incoming>f_yes</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="escalate" name="Escalate"><bpmn:incoming>f3</bpmn:incoming><bpmn:incoming>f_default</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming><bpmn:incoming>f5</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review" />
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="route" />
    <bpmn:sequenceFlow id="f3" sourceRef="review_late" targetRef="escalate" />
    <bpmn:sequenceFlow id="f_yes" sourceRef="route" targetRef="approved"><bpmn:conditionExpression>score &gt; 5</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_default" sourceRef="route" targetRef="escalate" />
    <bpmn:sequenceFlow id="f4" sourceRef="approved" targetRef="end" />
    <bpmn:sequenceFlow id="f5" sourceRef="escalate" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""


def bundle_of(process_id: str, xml: str):
    return catalog.build_bundles(catalog.DiagramSet(process_id, {f"{process_id}.bpmn": xml.encode()}))[process_id]


def failed_once(engine, bundle, data, script_input):
    """A case whose first task's completion failed: the stored state is the one before the attempt."""
    run = engine.start(bundle, data=data, now=T0)
    state, ref = run.serialize(), only_task(run).task_ref
    with pytest.raises(EngineFailure):
        run.complete_task(ref, script_input, now=T0)
    return engine.resume(bundle, state), ref


class TestRetryAfterCorrectingTheData:
    def test_a_script_that_failed_on_missing_data_runs_once_the_value_is_corrected(self, engine):
        bundle = scripted_bundle("stay_index = stay_days / gmlos_days")
        run, ref = failed_once(engine, bundle, {"stay_days": 6}, {})
        run.correct_data({"gmlos_days": 4}, now=T0)
        run.complete_task(ref, {}, now=T0)
        assert run.data()["stay_index"] == 1.5
        assert only_task(run).element_id == "after"
        assert run.written["gmlos_days"] == 4, "the correction is part of the case record"

    def test_a_wrong_value_is_replaced_not_merged_with_the_old_one(self, engine):
        bundle = scripted_bundle("ratio = 10 / divisor")
        run, ref = failed_once(engine, bundle, {"divisor": 0}, {})
        run.correct_data({"divisor": 5}, now=T0)
        run.complete_task(ref, {}, now=T0)
        assert run.data()["ratio"] == 2


class TestSkippingAFailedStep:
    def test_the_failed_script_is_passed_over_and_the_case_moves_to_the_next_step(self, engine):
        run, ref = failed_once(engine, scripted_bundle("x = 1 / 0"), {}, {})
        run.skip_failed_step("the_script")
        run.complete_task(ref, {"entered": True}, now=T0)
        assert run.skipped == ["the_script"]
        assert only_task(run).element_id == "after"
        assert "x" not in run.data() and run.data()["entered"] is True

    def test_a_skip_applies_only_to_the_step_named(self, engine):
        run, ref = failed_once(engine, scripted_bundle("x = 1 / 0"), {}, {})
        run.skip_failed_step("some_other_step")
        with pytest.raises(EngineFailure, match="The script"):
            run.complete_task(ref, {}, now=T0)

    def test_a_step_that_now_succeeds_is_not_skipped(self, engine):
        run, ref = failed_once(engine, scripted_bundle("x = 10 / divisor"), {"divisor": 0}, {})
        run.correct_data({"divisor": 2}, now=T0)
        run.skip_failed_step("the_script")
        run.complete_task(ref, {}, now=T0)
        assert run.skipped == [] and run.data()["x"] == 5

    def test_a_failed_gateway_cannot_be_skipped(self, engine):
        bundle = bundle_of("guarded", GUARDED_PROCESS)
        run = engine.start(bundle, data={}, now=T0)
        run.skip_failed_step("route")
        with pytest.raises(Conflict, match="cannot be skipped: move the case's token"):
            run.complete_task(only_task(run).task_ref, {}, now=T0)  # `score` is not defined


class TestMovingAToken:
    def test_the_token_moves_forward_past_steps_that_never_run(self, engine):
        run = engine.start(scripted_bundle("x = 1 / 0"), data={"mrn": "A1"}, now=T0)
        [token] = run.tokens()
        assert (token.element_id, token.state) == ("before", "ready")
        assert {t.element_id for t in run.move_targets(token.task_ref)} == {"the_script", "after", "end"}
        run.move_token(token.task_ref, "after", now=T0)
        assert only_task(run).element_id == "after"
        assert run.data()["mrn"] == "A1", "the case data travels with the token"

    def test_the_token_moves_back_to_a_step_already_done(self, engine):
        run = engine.start(scripted_bundle("x = 1"), data={}, now=T0)
        run.complete_task(only_task(run).task_ref, {"first": 1}, now=T0)
        run.move_token(only_task(run).task_ref, "before", now=T0)
        assert only_task(run).element_id == "before" and run.data()["first"] == 1

    def test_moving_to_a_script_runs_it(self, engine):
        run = engine.start(scripted_bundle("x = 7"), data={}, now=T0)
        run.move_token(only_task(run).task_ref, "the_script", now=T0)
        assert run.data()["x"] == 7 and only_task(run).element_id == "after"

    def test_moving_to_the_end_completes_the_case(self, engine):
        run = engine.start(scripted_bundle("x = 1"), data={}, now=T0)
        run.move_token(only_task(run).task_ref, "end", now=T0)
        assert run.completed

    def test_leaving_a_task_stops_its_boundary_timer_and_entering_one_arms_it_again(self, engine):
        bundle = bundle_of("guarded", GUARDED_PROCESS)
        run = engine.start(bundle, data={}, now=T0)
        assert [t.element_id for t in run.waiting_timers()] == ["review_late"]
        run.move_token(only_task(run).task_ref, "approved", now=T0)
        assert run.waiting_timers() == [] and only_task(run).element_id == "approved"
        later = T0 + timedelta(hours=1)
        run.move_token(only_task(run).task_ref, "review", now=later)
        [timer] = run.waiting_timers()
        assert timer.element_id == "review_late" and timer.due_at == later + timedelta(hours=8)

    def test_a_waiting_event_based_gateway_is_a_token_too(self, engine):
        bundle = bundle_of("race", RACE_PROCESS)
        run = engine.start(bundle, data={}, now=T0)
        [token] = run.tokens()
        assert (token.element_id, token.state) == ("first_of", "waiting")
        run.move_token(token.task_ref, "expired", now=T0)
        assert run.completed and run.waiting_timers() == [] and run.waiting_messages() == []

    def test_the_events_after_an_event_based_gateway_are_entered_through_the_gateway(self, engine):
        run = engine.start(bundle_of("race", RACE_PROCESS), data={}, now=T0)
        run.move_token(run.tokens()[0].task_ref, "answered", now=T0)
        again = engine.start(bundle_of("race", RACE_PROCESS), data={}, now=T0)
        [token] = again.tokens()
        with pytest.raises(Conflict, match="cannot be moved to 'payer_answers'"):
            again.move_token(token.task_ref, "payer_answers", now=T0)
        assert "payer_answers" not in {t.element_id for t in again.move_targets(token.task_ref)}

    def test_a_timer_catch_event_token_moves_on_without_its_timer(self, engine, bundles):
        run = engine.start(bundles["payer_wait"], data={}, now=T0)
        run.complete_task(only_task(run).task_ref, {}, now=T0)
        [token] = run.tokens()
        assert token.element_id == "wait_a_day"
        run.move_token(token.task_ref, "await_payer", now=T0)
        assert run.waiting_timers() == [] and [m.name for m in run.waiting_messages()] == ["payer_decision"]

    def test_the_state_after_a_move_survives_serialisation(self, engine):
        bundle = scripted_bundle("x = 1")
        run = engine.start(bundle, data={}, now=T0)
        run.move_token(only_task(run).task_ref, "after", now=T0)
        again = engine.resume(bundle, run.serialize())
        again.complete_task(only_task(again).task_ref, {}, now=T0)
        assert again.completed

    def test_unknown_targets_and_starts_are_refused_with_the_reason(self, engine):
        run = engine.start(scripted_bundle("x = 1"), data={}, now=T0)
        ref = only_task(run).task_ref
        with pytest.raises(NotFound, match="'nowhere' is not an element of 'scripted'"):
            run.move_token(ref, "nowhere", now=T0)
        with pytest.raises(Conflict, match="cannot be moved to"):
            run.move_token(ref, "start", now=T0)
        with pytest.raises(NotFound):
            run.move_token("not-a-task", "after", now=T0)
        assert only_task(run).element_id == "before", "a refused move changes nothing"

    def test_a_finished_task_is_not_a_token(self, engine):
        run = engine.start(scripted_bundle("x = 1"), data={}, now=T0)
        ref = only_task(run).task_ref
        run.complete_task(ref, {}, now=T0)
        with pytest.raises((Conflict, NotFound)):
            run.move_token(ref, "end", now=T0)
