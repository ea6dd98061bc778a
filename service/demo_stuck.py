"""Stuck demo cases: one or more of every kind the managers' stuck-case list shows.

Each is made the way it happens on a ward, through the real handlers on a clock set back
in time: cases opened days ago whose tasks are now overdue or at risk (some claimed by a
case manager who is off sick), a timer that came due while no scheduler ran, a case
nobody has touched for over a week, a step that failed on a mistyped appointment time,
and a case a colleague moved to wait for a payer's fax that never came. The stuck-case
scan then runs once, so the list is filled before the first scheduler poll.
"""
from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from pathlib import Path

from workflows import handlers
from workflows.errors import CaseworkError, EngineFailure
from workflows.handlers.scan import run_stuck_scan
from workflows.model import User
from workflows.process_tests import load_process_test

logger = logging.getLogger(__name__)

# (process test, opening actions to replay, how long ago the case opened, who claims its case-manager tasks)
STUCK_SCENARIOS = (
    ("acute_hospital/tests/acute_stay_medicare_inpatient_home.yaml", 0, timedelta(days=2), "carla"),
    ("acute_hospital/tests/acute_stay_denial_peer_to_peer_appeal.yaml", 2, timedelta(days=2, hours=3), "carla"),
    ("acute_hospital/tests/acute_stay_condition_code_44.yaml", 0, timedelta(days=3), "carla"),
    ("acute_hospital/tests/acute_stay_observation_moon_then_inpatient.yaml", 0, timedelta(hours=21), None),
    ("acute_hospital/tests/acute_stay_observation_moon_then_inpatient.yaml", 2, timedelta(days=2), None),
    ("inpatient_rehab/tests/irf_six_week_stay.yaml", 1, timedelta(days=9), None),
)
INCIDENT_CASE = "workers_comp/tests/workers_comp_two_years.yaml"
STALLED_CASE = "inpatient_rehab/tests/irf_authorization_timeout_appeal.yaml"


class _SetBack:
    """The wall clock, set back: what the demo cases saw when they were opened."""

    def __init__(self, clock, by: timedelta):
        self.clock, self.by = clock, by

    def now(self) -> datetime:
        return self.clock.now() - self.by


def load_stuck_cases(services, bpmn_path: str | Path, users: dict[str, User], replay) -> None:
    """Add the stuck demo cases, then scan once; `replay(services, test, actions)` opens a case and returns its id."""
    bpmn_path = Path(bpmn_path)

    def opened(path: str, actions: int, ago: timedelta, **start_data):
        file = bpmn_path / path
        if not file.is_file():
            return None, None
        past = dataclasses.replace(services, clock=_SetBack(services.clock, ago))
        test = load_process_test(path, file.read_bytes())
        return past, replay(past, dataclasses.replace(test, data={**test.data, **start_data}), actions)

    # First, while no other demo timer is due yet: the scheduler's firings of the past day.
    _stalled(services, opened)
    for path, actions, ago, claimer in STUCK_SCENARIOS:
        try:
            past, case_id = opened(path, actions, ago)
            if case_id is not None and claimer:
                _claim_case_manager_tasks(past, users[claimer], case_id)
        except CaseworkError as err:
            logger.warning("Stuck demo case from %s stopped early: %s", path, err)
    _failed_step(services, users, opened)
    run_stuck_scan(services, owner="demo", every=timedelta(0), idle_days=7, timer_grace=timedelta(minutes=1))


def _claim_case_manager_tasks(services, user: User, case_id: int) -> None:
    for task in handlers.get_case(services, case_id=case_id).open_tasks:
        if task.candidate_role in user.roles and task.assignee is None:
            handlers.claim_task(services, actor=user, task_id=task.id)


def _failed_step(services, users, opened) -> None:
    """A workers' comp case whose appointment packet fails: the appointment time came in as 'Tuesday 9am'."""
    try:
        past, case_id = opened(INCIDENT_CASE, 13, timedelta(days=1))
        if case_id is None:
            return
        nick = users["nick"]
        handlers.deliver_message(past, actor=nick, name="physician_appointment_scheduled", case_id=case_id, payload={
            "appointment_id": "A-01", "appointment_at": "Tuesday 9am", "physician_name": "Dr. Ellen Park",
            "specialty": "orthopaedic surgery",
        })
        packet = next(t for t in handlers.get_case(past, case_id=case_id).open_tasks
                      if t.element_id == "send_appointment_packet")
        handlers.claim_task(past, actor=nick, task_id=packet.id)
        handlers.complete_task(past, actor=nick, task_id=packet.id, data={
            "job_description_sent": True, "modified_duties_available": True, "sent_method": "fax",
        })
        logger.warning("The demo's failed step did not fail: the diagram now accepts 'Tuesday 9am'.")
    except EngineFailure:
        pass  # the incident is recorded on the case: that is the point
    except (CaseworkError, StopIteration) as err:
        logger.warning("Failed-step demo case stopped early: %s", err)


def _stalled(services, opened) -> None:
    """An IRF case whose authorization clock fired a day ago and failed four times: a policy value was mistyped."""
    try:
        _, case_id = opened(STALLED_CASE, 2, timedelta(days=4), authorization_followup_due="2 days")
        if case_id is None:
            return
        # The scheduler's attempts as they happened: at once, then after 1, 5 and 15 minutes.
        for minutes in (0, 1, 6, 21):
            then = dataclasses.replace(services, clock=_SetBack(services.clock, timedelta(days=1, minutes=-minutes)))
            handlers.fire_due_timers(then, owner="demo-scheduler")
        if not handlers.get_case(services, case_id=case_id).open_incidents:
            logger.warning("The demo's stalled case did not stall: its timer fired without failing.")
    except CaseworkError as err:
        logger.warning("Stalled demo case stopped early: %s", err)
