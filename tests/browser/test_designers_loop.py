"""A designer's whole loop in headless chromium, then a supervisor moving the running cases (issue 7's "Done when").

Dana, the process designer, changes the acute-hospital diagram after a policy review: the
post-discharge follow-up call is due 72 hours after discharge for every patient (no longer
a value the case data may change), and the 24-hour observation timer is written out
instead of read from a variable. She types
the duration unquoted, the validation marks the timer, she quotes it, runs the process
tests, and deploys version 2. Sue, the director, then moves running cases onto version 2;
the cases waiting at the timer Dana changed are refused with the reason.
"""
from __future__ import annotations

import re

from lxml import etree

from tests.browser.conftest import screenshot
from tests.browser.test_designer_modeler import BPMN, CANVAS, SPIFF, alert, choose, draft_file, edit, press, settle
from tests.browser.test_inbox_in_the_browser import sign_in

OBSERVATION_TIMER = "observation_24_hours"
UNQUOTED = "add_duration(observation_started_at, PT24H).isoformat()"
QUOTED = 'add_duration(observation_started_at, "PT24H").isoformat()'


def test_a_designer_changes_a_due_rule_fixes_a_timer_tests_deploys_and_a_supervisor_migrates_cases(
        live_server, new_page):
    dana = new_page(1400, 1000)
    sign_in(dana, live_server, "dana")
    dana.get_by_role("link", name="Designer").first.click()
    dana.locator("[data-set='acute_hospital']").get_by_role("link", name="Open editor").click()
    dana.wait_for_selector("[data-designer][data-open-file='acute_stay.bpmn']")
    settle(dana)

    # The due rule: 72 hours after discharge, for every patient.
    choose(dana, "post_discharge_follow_up_call")
    assert dana.get_by_label("Due in", exact=True).input_value() == "followup_call_due"
    assert dana.get_by_label("Due from", exact=True).input_value() == "discharged_at"
    edit(dana, "Due in", "PT72H")

    # The observation timer, first with the duration left unquoted.
    choose(dana, OBSERVATION_TIMER)
    assert dana.get_by_label("Timer expression").input_value() == "moon_timer_at"
    edit(dana, "Timer expression", UNQUOTED)
    press(dana, "Validate")
    problem = dana.locator(f'[data-problems] li.problem-error[data-element-id="{OBSERVATION_TIMER}"]')
    assert problem.count() == 1, alert(dana)
    assert "uses PT24H as a variable name" in problem.inner_text() and '"PT24H"' in problem.inner_text()
    assert dana.locator(f'{CANVAS} .djs-element[data-element-id="{OBSERVATION_TIMER}"].lint-error').count() == 1
    screenshot(dana, "designer-loop-unquoted-timer")

    edit(dana, "Timer expression", QUOTED)
    press(dana, "Validate")
    assert dana.locator("[data-problems] li.problem-error").count() == 0, alert(dana)
    assert dana.locator(f"{CANVAS} .lint-error").count() == 0

    press(dana, "Run tests")
    summary = dana.locator("[data-test-summary]")
    assert summary.get_attribute("data-passed") == "true", summary.inner_text() + alert(dana)
    assert dana.locator("[data-tests] li.test-failed").count() == 0
    assert dana.locator("[data-tests] li.test-passed").count() >= 8
    assert dana.locator(f'{CANVAS} .djs-element[data-element-id="{OBSERVATION_TIMER}"].cw-covered').count() == 1
    screenshot(dana, "designer-loop-tests-passed")

    saved = etree.fromstring(draft_file(dana, live_server, "acute_stay.bpmn").encode())
    call = saved.find(f".//{BPMN}userTask[@id='post_discharge_follow_up_call']")
    assert {p.get("name"): p.get("value") for p in call.iter(f"{SPIFF}property")}["dueIn"] == "PT72H"

    dana.get_by_label("What changed and why").fill(
        "Follow-up call due 72 h after discharge for every patient; observation timer written out.")
    dana.get_by_role("button", name="Deploy", exact=True).click()
    dana.wait_for_url(re.compile(r"/designer$"))
    assert "Deployed acute_stay version 2" in dana.locator("body").inner_text()
    row = dana.locator("[data-process-id='acute_stay'][data-version='2']")
    assert "dana" in row.inner_text() and "72 h after discharge" in row.inner_text()

    # Sue moves running cases: first she reads what version 2 changes.
    sue = new_page(1400, 1000)
    sign_in(sue, live_server, "sue")
    sue.goto(f"{live_server}/processes")
    sue.get_by_role("link", name="What version 2 changes").click()
    changes = sue.locator("body").inner_text()
    assert "Post-discharge follow-up call" in changes and "due rule" in changes
    assert "24 h in observation" in changes and "timer" in changes
    sue.goto(f"{live_server}/processes")
    sue.get_by_role("link", name="Move running cases to version 2").click()

    rows = sue.locator("tr[data-case-id]")
    movable = [r.get_attribute("data-case-id") for r in rows.all() if r.locator("[data-outcome]").inner_text().startswith("Yes")]
    waiting = [r.get_attribute("data-case-id") for r in rows.all()
               if "24 h in observation" in r.locator("[data-outcome]").inner_text()]
    assert len(movable) >= 2 and waiting, rows.all_inner_texts()
    chosen = [movable[0], movable[1], waiting[0]]
    for case_id in [r.get_attribute("data-case-id") for r in rows.all()]:
        box = sue.locator(f"#case-{case_id}")
        box.set_checked(case_id in chosen)
    sue.get_by_role("button", name="Move the chosen cases to version 2").click()
    sue.wait_for_selector("[data-results]")
    results = {item.get_attribute("data-case-id"): item for item in sue.locator("[data-results] li").all()}
    assert sorted(results) == sorted(chosen)
    for case_id in movable[:2]:
        assert results[case_id].get_attribute("data-migrated") == "yes"
        assert "migrated to version 2" in results[case_id].inner_text()
    refused = results[waiting[0]]
    assert refused.get_attribute("data-migrated") == "no"
    assert "refused: The case is waiting at the timer '24 h in observation'" in refused.inner_text()
    assert "move the token or let the timer fire first" in refused.inner_text()
    screenshot(sue, "designer-loop-migration")

    sue.goto(f"{live_server}/cases/{movable[0]}")
    assert "moved the case from version 1 to version 2" in sue.locator("body").inner_text()
    sue.goto(f"{live_server}/cases/{waiting[0]}")
    assert "tried to move the case to version 2, which was refused" in sue.locator("body").inner_text()
