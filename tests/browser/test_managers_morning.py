"""A manager's morning in headless chromium: find each kind of stuck case in the demo data, open it, fix it.

The demo (service/demo_stuck.py) holds overdue and at-risk tasks (some claimed by carla, off
sick today), timers that came due while no scheduler ran, an idle case, a failed step, and
an IRF case stalled since its payer-decision clock failed on a mistyped follow-up window.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.test_inbox_in_the_browser import sign_in

KINDS = ("task_overdue", "task_at_risk", "incident", "stalled", "timer_overdue", "idle")


def reason_tab(page, reason: str):
    return page.locator(f"nav.tabs a[data-reason='{reason}']")


def count_of(page, reason: str) -> int:
    return int(reason_tab(page, reason).locator(".count").inner_text())


def test_a_manager_finds_each_kind_of_stuck_case_and_opens_it(live_server, new_page):
    sue = new_page()
    sign_in(sue, live_server, "sue")
    sue.get_by_role("link", name="Stuck cases").click()
    expect(sue.get_by_role("heading", name="Stuck cases")).to_be_visible()
    screenshot(sue, "stuck-cases")
    for reason in KINDS:
        assert count_of(sue, reason) > 0, f"the demo has a case stuck for {reason}"
        reason_tab(sue, reason).click()
        sue.wait_for_url(re.compile(rf"reason={reason}"))
        rows = sue.locator("table.stuck tbody tr[data-case-id]")
        assert rows.count() == count_of(sue, reason)
        assert set(rows.evaluate_all("rows => rows.map(r => r.dataset.reason)")) == {reason}
        case_id = rows.first.get_attribute("data-case-id")
        rows.first.locator("td.case a").click()
        sue.wait_for_url(re.compile(rf"/cases/{case_id}$"))
        expect(sue.locator("h1")).to_be_visible()
        sue.go_back()


def test_a_manager_retries_the_failed_step_after_correcting_the_appointment_time(live_server, new_page):
    sue = new_page()
    sign_in(sue, live_server, "sue")
    sue.goto(f"{live_server}/stuck?reason=incident")
    row = sue.locator("table.stuck tbody tr[data-case-id]", has_text="Work status received?").first
    expect(row).to_contain_text("Failed step")
    row.locator("td.case a").click()
    failed = sue.locator("section.incidents")
    expect(failed).to_contain_text("Work status received?")
    screenshot(sue, "case-failed-step")

    appointment_at = (datetime.now(timezone.utc) + timedelta(days=2)).replace(microsecond=0).isoformat()
    corrected = {"appointment_id": "A-01", "appointment_at": appointment_at, "physician_name": "Dr. Ellen Park",
                 "specialty": "orthopaedic surgery"}
    failed.get_by_label("Correct the case data first").fill(f"appointment: {json.dumps(corrected)}")
    failed.get_by_role("button", name="Retry the step").click()
    expect(sue.get_by_role("status").first).to_contain_text("was run again with the corrected data")
    expect(sue.locator("section.incidents")).to_have_count(0)
    timeline = sue.locator("#history, .timeline").first
    expect(timeline).to_contain_text("retried the failed step")
    expect(timeline).to_contain_text("corrected the case data: appointment")

    sue.goto(f"{live_server}/stuck?reason=incident")
    expect(sue.locator("table.stuck tbody")).not_to_contain_text("Work status received?")


def test_a_manager_restarts_a_stalled_case_by_correcting_the_value_its_clock_failed_on(live_server, new_page):
    sue = new_page()
    sign_in(sue, live_server, "sue")
    sue.goto(f"{live_server}/stuck?reason=stalled")
    row = sue.locator("table.stuck tbody tr[data-case-id]").first
    case_id = row.get_attribute("data-case-id")
    row.locator("td.case a").click()
    failed = sue.locator("section.incidents")
    expect(failed).to_contain_text("Firing the timer failed")
    failed.get_by_label("Correct the case data first").fill('authorization_followup_due: "P2D"')
    failed.get_by_role("button", name="Retry the step").click()
    expect(sue.get_by_role("status").first).to_contain_text("was run again with the corrected data")
    expect(sue.locator("section", has=sue.locator("#open-tasks"))).to_contain_text("Follow up overdue payer decision")
    expect(sue.locator(".timeline").first).to_contain_text("Timer fired")
    sue.goto(f"{live_server}/stuck?reason=stalled")
    expect(sue.locator(f"table.stuck tbody tr[data-case-id='{case_id}']")).to_have_count(0)


def test_a_manager_reassigns_an_absent_colleagues_overdue_tasks_in_bulk(live_server, new_page):
    sue = new_page()
    sign_in(sue, live_server, "sue")
    sue.goto(f"{live_server}/stuck?reason=task_overdue&setting=acute_hospital&assignee=carla")
    boxes = sue.locator("table.stuck tbody input[type=checkbox][name=task]")
    chosen = boxes.count()
    assert chosen >= 3, "carla holds several overdue tasks in the demo"
    for index in range(chosen):
        boxes.nth(index).check()
    sue.get_by_label("Reassign the selected tasks to").select_option("cole")
    sue.get_by_role("button", name="Reassign").click()
    expect(sue.get_by_role("status").first).to_contain_text(f"{chosen} tasks reassigned to cole")
    expect(sue.locator("table.stuck tbody")).to_contain_text("Nothing is stuck with these filters")

    sue.goto(f"{live_server}/stuck?reason=task_overdue&setting=acute_hospital&assignee=cole")
    rows = sue.locator("table.stuck tbody tr[data-case-id]")
    assert rows.count() == chosen
    rows.first.locator("td.case a").click()
    expect(sue.locator("#history, .timeline").first).to_contain_text("assigned to cole")


def test_a_manager_moves_a_case_past_a_timer_that_did_not_fire(live_server, new_page):
    sue = new_page()
    sign_in(sue, live_server, "sue")
    sue.goto(f"{live_server}/stuck?reason=timer_overdue&process=acute_stay")
    row = sue.locator("table.stuck tbody tr[data-case-id]", has_text="Observation 24 hours").first
    case_id = row.get_attribute("data-case-id")
    row.locator("td.case a").click()
    sue.wait_for_url(re.compile(rf"/cases/{case_id}$"))
    expect(sue.locator("body")).to_contain_text("Observation 24 hours")

    sue.get_by_text("Move the case to another step").click()
    choice = sue.locator("optgroup[label^='From 24 h in observation'] option", has_text="Deliver the MOON")
    sue.get_by_label("From where it stands, to").select_option(choice.get_attribute("value"))
    sue.get_by_label("Reason", exact=True).fill("Scheduler was down overnight; the MOON is due now")
    sue.get_by_role("button", name="Move the case").click()
    expect(sue.get_by_role("status").first).to_contain_text("moved from “24 h in observation” to “Deliver the MOON”")
    expect(sue.locator("section", has=sue.locator("#open-tasks"))).to_contain_text("Deliver the MOON")
    expect(sue.locator("#history, .timeline").first).to_contain_text(
        "moved the case: from 24 h in observation to Deliver the MOON")
    screenshot(sue, "case-token-moved")
