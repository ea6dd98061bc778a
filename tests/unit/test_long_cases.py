"""A long acute stay on the bundled diagram: 300 daily reviews leave the stored state as small as one.

Each cycle is what the service does every day of a stay: the "Next review date" timer
fires, then the case manager completes the continued-stay review, with the case stored
and restored between every action (SimulatedCase). bench/growth.py times the same cycles.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from workflows import catalog
from workflows.due_rules import DuePolicy
from workflows.engine import Engine
from workflows.process_tests.simulation import SimulatedCase

BPMN = Path(__file__).resolve().parents[2] / "bpmn"
START = {
    "patient_name": "Henry Irving", "mrn": "MRN-855301", "order_type": "inpatient",
    "order_at": "2026-04-06T08:00:00-04:00", "payer_name": "Self pay", "payer_type": "self_pay",
    "working_diagnosis": "Ischemic stroke", "working_drg": "065",
}
REVIEW = {"criteria_met": True, "status_recommendation": "inpatient", "avoidable_day": False, "send_to_payer": False}


@pytest.fixture(scope="module")
def acute_stay():
    sets = catalog.find_diagram_sets(BPMN)
    acute = next(s for s in sets if s.name == "acute_hospital")
    return catalog.build_bundles(catalog.with_dependencies(acute, sets))["acute_stay"]


def review_cycle(case: SimulatedCase) -> None:
    [review_timer] = [t for t in case.timers if t.element_id == "wait_for_next_review"]
    case.advance_to(review_timer.due_at)
    case.complete("continued_stay_review", REVIEW)


def test_the_stored_state_after_300_review_cycles_is_no_larger_than_after_one(acute_stay):
    case = SimulatedCase(Engine(), acute_stay, now=datetime(2026, 4, 6, 12, 10, tzinfo=timezone.utc), policy=DuePolicy())
    case.start(dict(START))
    case.complete("admission_review", {"status_recommendation": "inpatient", "criteria_met": True, "expected_midnights": 3})
    case.complete("early_screen", {"evaluation_needed": False, "prior_living_situation": "home_alone",
                                   "evaluation_requested_by": "nobody"})
    review_cycle(case)
    after_one = len(case.state)
    for _ in range(299):
        review_cycle(case)

    assert len(case.state) <= 1.5 * after_one, f"{len(case.state)} bytes after 300 cycles, {after_one} after one"
    # Still a live stay on its 301st day: the next review is waiting and the discharge work is open.
    assert [t.element_id for t in case.timers] == ["wait_for_next_review"]
    assert "medically_ready" in [t.element_id for t in case.open_tasks]
    assert (case.now - datetime(2026, 4, 6, tzinfo=timezone.utc)).days >= 300
