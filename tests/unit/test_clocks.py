"""Clocks that pause (a case on hold) and clocks that restart (the moment a due rule starts from changes)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.unit.fakes import FakeClock, FakeUnitOfWorkFactory, user
from workflows import catalog, deployment, handlers
from workflows.engine import Engine
from workflows.errors import Conflict, DiagramError, Forbidden, InvalidInput
from workflows.model import CaseStatus, TaskStatus, TimerStatus
from workflows.services import Services

DATA = Path(__file__).resolve().parent.parent / "data" / "engine"
DESIGNER = user("dana", "designer")
CARLA = user("carla", "case_manager")
SUE = user("sue", "supervisor")

# Kept here rather than in tests/data/engine: every file there is deployed as one set by other tests.
# Three clocks run side by side: the IM notice is due 48 h from the inpatient order (`order_at`) with a
# reminder every 12 h; another branch can correct the order time; a third waits a day, then follows up.
HELD_STAY = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d_held_stay" targetNamespace="t">
  <bpmn:process id="held_stay" name="A stay whose clocks can be held" isExecutable="true">
    <bpmn:laneSet id="lanes">
      <bpmn:lane id="lane_cm" name="case_manager">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef><bpmn:flowNodeRef>split</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>im_notice</bpmn:flowNodeRef><bpmn:flowNodeRef>remind</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>reminded</bpmn:flowNodeRef><bpmn:flowNodeRef>im_given</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>correct_order</bpmn:flowNodeRef><bpmn:flowNodeRef>order_corrected</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>wait_a_day</bpmn:flowNodeRef><bpmn:flowNodeRef>follow_up</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>followed_up</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start"><bpmn:outgoing>f_split</bpmn:outgoing></bpmn:startEvent>
    <bpmn:parallelGateway id="split">
      <bpmn:incoming>f_split</bpmn:incoming>
      <bpmn:outgoing>f_im</bpmn:outgoing><bpmn:outgoing>f_order</bpmn:outgoing><bpmn:outgoing>f_wait</bpmn:outgoing>
    </bpmn:parallelGateway>
    <bpmn:userTask id="im_notice" name="Deliver the Important Message from Medicare">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="dueIn" value="PT48H" />
          <spiffworkflow:property name="dueFrom" value="order_at" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>f_im</bpmn:incoming><bpmn:outgoing>f_im_done</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="remind" name="Every 12 hours" attachedToRef="im_notice" cancelActivity="false">
      <bpmn:outgoing>f_reminded</bpmn:outgoing>
      <bpmn:timerEventDefinition id="ted_cycle"><bpmn:timeCycle>"R/PT12H"</bpmn:timeCycle></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="reminded"><bpmn:incoming>f_reminded</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="im_given"><bpmn:incoming>f_im_done</bpmn:incoming></bpmn:endEvent>
    <bpmn:userTask id="correct_order" name="Correct the inpatient order time">
      <bpmn:incoming>f_order</bpmn:incoming><bpmn:outgoing>f_order_done</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="order_corrected"><bpmn:incoming>f_order_done</bpmn:incoming></bpmn:endEvent>
    <bpmn:intermediateCatchEvent id="wait_a_day" name="A day later">
      <bpmn:incoming>f_wait</bpmn:incoming><bpmn:outgoing>f_follow</bpmn:outgoing>
      <bpmn:timerEventDefinition id="ted_day"><bpmn:timeDuration>"PT24H"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:userTask id="follow_up" name="Follow up">
      <bpmn:incoming>f_follow</bpmn:incoming><bpmn:outgoing>f_followed</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="followed_up"><bpmn:incoming>f_followed</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f_split" sourceRef="start" targetRef="split" />
    <bpmn:sequenceFlow id="f_im" sourceRef="split" targetRef="im_notice" />
    <bpmn:sequenceFlow id="f_order" sourceRef="split" targetRef="correct_order" />
    <bpmn:sequenceFlow id="f_wait" sourceRef="split" targetRef="wait_a_day" />
    <bpmn:sequenceFlow id="f_im_done" sourceRef="im_notice" targetRef="im_given" />
    <bpmn:sequenceFlow id="f_reminded" sourceRef="remind" targetRef="reminded" />
    <bpmn:sequenceFlow id="f_order_done" sourceRef="correct_order" targetRef="order_corrected" />
    <bpmn:sequenceFlow id="f_follow" sourceRef="wait_a_day" targetRef="follow_up" />
    <bpmn:sequenceFlow id="f_followed" sourceRef="follow_up" targetRef="followed_up" />
  </bpmn:process>
</bpmn:definitions>
"""


def clock_diagrams() -> dict[str, bytes]:
    return {"held_stay.bpmn": HELD_STAY.encode(), "payer_wait.bpmn": (DATA / "payer_wait.bpmn").read_bytes()}


@pytest.fixture
def services():
    services = Services(uow=FakeUnitOfWorkFactory(), clock=FakeClock(), engine=Engine(script_time_limit=0.5))
    deployment.deploy_diagram_set(services, diagram_set=catalog.DiagramSet("clocks", clock_diagrams()), actor=DESIGNER)
    return services


def start_held_stay(services, *, ordered_hours_ago: float = 2):
    order_at = services.clock.now() - timedelta(hours=ordered_hours_ago)
    return handlers.start_case(services, actor=CARLA, process_id="held_stay", data={"order_at": order_at.isoformat()})


def start_day_wait(services):
    """A payer_wait case whose 24 h timer starts now."""
    case = handlers.start_case(services, actor=CARLA, process_id="payer_wait")
    [intake] = handlers.get_case(services, case_id=case.id).open_tasks
    handlers.complete_task(services, actor=CARLA, task_id=intake.id, data={})
    return case


def task_named(services, case_id, element_id):
    return next(t for t in handlers.get_case(services, case_id=case_id).open_tasks if t.element_id == element_id)


def timers_of(services, case_id):
    with services.uow(read_only=True) as uow:
        return uow.timers.for_case(case_id, pending_only=False)


def timer_named(services, case_id, element_id, status=TimerStatus.PENDING):
    [timer] = [t for t in timers_of(services, case_id) if t.element_id == element_id and t.status == status]
    return timer


def events_of(services, case_id, kind):
    return [e for e in handlers.get_case(services, case_id=case_id).events if e.kind == kind]


def hold(services, case_id, *, after_hours: float, for_hours: float):
    services.clock.advance(hours=after_hours)
    handlers.suspend_case(services, actor=SUE, case_id=case_id, reason="Patient transferred out for surgery")
    services.clock.advance(hours=for_hours)
    return handlers.resume_case(services, actor=SUE, case_id=case_id, reason="Patient back on the unit")


class TestSuspending:
    def test_a_suspended_case_pauses_its_timers_keeps_its_tasks_visible_and_cannot_be_worked(self, services):
        case = start_held_stay(services)
        services.clock.advance(hours=1)
        suspended = handlers.suspend_case(services, actor=SUE, case_id=case.id, reason="Claim on hold pending litigation")

        assert suspended.status == CaseStatus.SUSPENDED and suspended.suspended_at == services.clock.now()
        assert {t.status for t in timers_of(services, case.id)} == {TimerStatus.PAUSED}
        detail = handlers.get_case(services, case_id=case.id)
        assert sorted(t.element_id for t in detail.pending_timers) == ["remind", "wait_a_day"]
        tasks = detail.open_tasks
        assert sorted(t.element_id for t in tasks) == ["correct_order", "im_notice"]
        [event] = events_of(services, case.id, "case_suspended")
        assert (event.actor, event.payload) == ("sue", {"reason": "Claim on hold pending litigation"})
        with pytest.raises(Conflict, match=r"Case \d+ is suspended \(on hold since .* UTC\); a supervisor must resume it"):
            handlers.complete_task(services, actor=CARLA, task_id=tasks[0].id, data={})

    def test_suspending_needs_a_supervisor_and_a_reason(self, services):
        case = start_held_stay(services)
        with pytest.raises(Forbidden, match="Only supervisors can suspend a case"):
            handlers.suspend_case(services, actor=CARLA, case_id=case.id, reason="Transferred out")
        with pytest.raises(InvalidInput) as refused:
            handlers.suspend_case(services, actor=SUE, case_id=case.id, reason="  ")
        assert refused.value.field_errors == {"reason": ["This field is required."]}
        assert handlers.get_case(services, case_id=case.id).case.status == CaseStatus.ACTIVE

    def test_only_an_active_case_can_be_suspended_and_only_a_suspended_one_resumed(self, services):
        case = start_held_stay(services)
        with pytest.raises(Conflict, match=rf"Case {case.id} is active; only suspended cases can be resumed"):
            handlers.resume_case(services, actor=SUE, case_id=case.id)
        handlers.suspend_case(services, actor=SUE, case_id=case.id, reason="Transferred out")
        with pytest.raises(Conflict, match=rf"Case {case.id} is suspended; only active cases can be suspended"):
            handlers.suspend_case(services, actor=SUE, case_id=case.id, reason="Again")
        handlers.cancel_case(services, actor=SUE, case_id=case.id, reason="Duplicate")
        with pytest.raises(Conflict, match="is cancelled; only suspended cases can be resumed"):
            handlers.resume_case(services, actor=SUE, case_id=case.id)
        with pytest.raises(Conflict, match="is cancelled; only active cases can be suspended"):
            handlers.suspend_case(services, actor=SUE, case_id=case.id, reason="Late")

    def test_resuming_needs_a_supervisor(self, services):
        case = start_held_stay(services)
        handlers.suspend_case(services, actor=SUE, case_id=case.id, reason="Transferred out")
        with pytest.raises(Forbidden, match="Only supervisors can resume a case"):
            handlers.resume_case(services, actor=CARLA, case_id=case.id)


class TestTimersStandStillWhileSuspended:
    def test_a_24_hour_timer_held_for_30_hours_after_10_fires_at_54_hours_and_not_before(self, services):
        case = start_day_wait(services)
        started = services.clock.now()
        hold(services, case.id, after_hours=10, for_hours=30)

        assert timer_named(services, case.id, "wait_a_day").due_at == started + timedelta(hours=54)
        services.clock.current = started + timedelta(hours=53, minutes=59)
        assert handlers.fire_due_timers(services) == 0
        services.clock.advance(minutes=1)
        assert handlers.fire_due_timers(services) == 1
        [fired] = events_of(services, case.id, "timer_fired")
        assert fired.payload["due_at"] == (started + timedelta(hours=54)).isoformat()

    def test_a_suspended_cases_timer_does_not_fire_when_its_original_time_passes(self, services):
        case = start_day_wait(services)
        started = services.clock.now()
        services.clock.advance(hours=10)
        handlers.suspend_case(services, actor=SUE, case_id=case.id, reason="Transferred out")
        version = handlers.get_case(services, case_id=case.id).case.version

        services.clock.current = started + timedelta(hours=30)
        assert handlers.fire_due_timers(services) == 0
        detail = handlers.get_case(services, case_id=case.id)
        assert detail.case.version == version and not events_of(services, case.id, "timer_fired")
        assert timer_named(services, case.id, "wait_a_day", TimerStatus.PAUSED).due_at == started + timedelta(hours=24)

    def test_a_timer_overdue_when_its_case_resumes_still_waits_out_the_pause(self, services):
        case = start_day_wait(services)
        started = services.clock.now()
        hold(services, case.id, after_hours=10, for_hours=30)  # resumed at 40 h: the original 24 h is long gone
        assert handlers.fire_due_timers(services) == 0
        services.clock.current = started + timedelta(hours=54)
        assert handlers.fire_due_timers(services) == 1

    def test_a_cycle_timer_moves_on_by_the_pause_and_keeps_its_period(self, services):
        case = start_held_stay(services)
        started = services.clock.now()
        assert timer_named(services, case.id, "remind").due_at == started + timedelta(hours=12)
        hold(services, case.id, after_hours=10, for_hours=30)

        assert timer_named(services, case.id, "remind").due_at == started + timedelta(hours=42)
        services.clock.current = started + timedelta(hours=41, minutes=59)
        assert handlers.fire_due_timers(services) == 0
        services.clock.current = started + timedelta(hours=42)
        assert handlers.fire_due_timers(services) == 1
        assert timer_named(services, case.id, "remind").due_at == started + timedelta(hours=54)

    def test_resuming_moves_every_clock_of_the_case_by_the_same_pause(self, services):
        case = start_held_stay(services, ordered_hours_ago=2)
        started = services.clock.now()
        notice = task_named(services, case.id, "im_notice")
        assert notice.due_at == started + timedelta(hours=46)
        before = {t.element_id: t.due_at for t in timers_of(services, case.id)}

        resumed = hold(services, case.id, after_hours=10, for_hours=30)

        pause = timedelta(hours=30)
        assert resumed.status == CaseStatus.ACTIVE and resumed.suspended_at is None
        after = {t.element_id: t.due_at for t in timers_of(services, case.id)}
        assert after == {element: due + pause for element, due in before.items()}
        assert {t.status for t in timers_of(services, case.id)} == {TimerStatus.PENDING}
        moved = task_named(services, case.id, "im_notice")
        assert (moved.due_at, moved.at_risk_at) == (notice.due_at + pause, notice.at_risk_at + pause)
        assert task_named(services, case.id, "correct_order").due_at is None

    def test_resuming_records_who_why_and_how_long_the_case_was_held(self, services):
        case = start_held_stay(services)
        suspended_at = services.clock.now() + timedelta(hours=10)
        hold(services, case.id, after_hours=10, for_hours=30)
        [event] = events_of(services, case.id, "case_resumed")
        assert event.actor == "sue"
        assert event.payload == {"reason": "Patient back on the unit", "suspended_at": suspended_at.isoformat(),
                                 "paused_seconds": 30 * 3600.0}

    def test_a_resumed_case_is_worked_as_before(self, services):
        case = start_held_stay(services)
        hold(services, case.id, after_hours=1, for_hours=2)
        order = task_named(services, case.id, "correct_order")
        done = handlers.complete_task(services, actor=CARLA, task_id=order.id, data={})
        assert done.status == TaskStatus.COMPLETED


class TestCancellingASuspendedCase:
    def test_a_suspended_case_can_be_cancelled_and_its_paused_timers_are_cancelled(self, services):
        case = start_held_stay(services)
        services.clock.advance(hours=1)
        handlers.suspend_case(services, actor=SUE, case_id=case.id, reason="Transferred out")
        services.clock.advance(hours=30)  # past the original due time of the day timer
        cancelled = handlers.cancel_case(services, actor=SUE, case_id=case.id, reason="Not coming back")

        assert cancelled.status == CaseStatus.CANCELLED and cancelled.suspended_at is None
        assert {t.status for t in timers_of(services, case.id)} == {TimerStatus.CANCELLED}
        assert handlers.get_case(services, case_id=case.id).open_tasks == []


class TestClocksThatRestart:
    def test_rewriting_the_moment_a_due_rule_starts_from_restarts_the_task_clock(self, services):
        case = start_held_stay(services, ordered_hours_ago=2)
        started = services.clock.now()
        notice = task_named(services, case.id, "im_notice")
        services.clock.advance(hours=4)
        corrected = started + timedelta(hours=3)  # the observation stay became inpatient later than recorded
        order = task_named(services, case.id, "correct_order")
        handlers.complete_task(services, actor=CARLA, task_id=order.id, data={"order_at": corrected.isoformat()})

        restarted = task_named(services, case.id, "im_notice")
        assert restarted.id == notice.id
        assert restarted.due_at == corrected + timedelta(hours=48)
        assert restarted.at_risk_at == corrected + timedelta(hours=48) * 0.8
        [event] = events_of(services, case.id, "due_changed")
        assert event.actor == "carla" and event.at == services.clock.now()
        assert event.payload == {
            "task_id": notice.id, "element_id": "im_notice", "title": notice.title, "because_of": ["order_at"],
            "old_due_at": notice.due_at.isoformat(), "new_due_at": restarted.due_at.isoformat(),
            "new_at_risk_at": restarted.at_risk_at.isoformat(),
        }

    def test_an_action_that_leaves_the_moment_alone_keeps_the_due_time(self, services):
        case = start_held_stay(services)
        notice = task_named(services, case.id, "im_notice")
        order = task_named(services, case.id, "correct_order")
        same = handlers.get_case(services, case_id=case.id).case.data["order_at"]
        handlers.complete_task(services, actor=CARLA, task_id=order.id, data={"order_at": same, "note": "checked"})
        assert task_named(services, case.id, "im_notice").due_at == notice.due_at
        assert events_of(services, case.id, "due_changed") == []

    def test_a_moment_that_is_not_a_date_time_is_refused_and_changes_nothing(self, services):
        case = start_held_stay(services)
        order = task_named(services, case.id, "correct_order")
        with pytest.raises(DiagramError, match="dueFrom variable 'order_at' holds 'yesterday'"):
            handlers.complete_task(services, actor=CARLA, task_id=order.id, data={"order_at": "yesterday"})
        detail = handlers.get_case(services, case_id=case.id)
        assert detail.case.version == 1 and len(detail.open_tasks) == 2


class TestTheEngineShiftsItsTimers:
    def test_shifted_due_times_survive_serialisation(self, services):
        bundle = catalog.build_bundles(catalog.DiagramSet("clocks", clock_diagrams()))["held_stay"]
        now = services.clock.now()
        run = services.engine.start(bundle, data={"order_at": now.isoformat()}, now=now)
        before = {t.element_id: t.due_at for t in run.waiting_timers()}
        run.shift_timers(timedelta(days=3, minutes=5))
        reloaded = services.engine.resume(bundle, run.serialize())
        after = {t.element_id: t.due_at for t in reloaded.waiting_timers()}
        assert after == {element: due + timedelta(days=3, minutes=5) for element, due in before.items()}
        assert set(after) == {"remind", "wait_a_day"}
