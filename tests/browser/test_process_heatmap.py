"""The process view in headless chromium: a supervisor sees where the demo's acute cases wait and follows a count."""
from __future__ import annotations

import re

from tests.browser.conftest import screenshot
from tests.browser.test_inbox_in_the_browser import sign_in


def badge_counts(page) -> dict[str, int]:
    """The count badge on each element of the drawn diagram, by element id."""
    counts = {}
    for element_id in page.locator("[data-bpmn-diagram]").get_attribute("data-heat-elements").split():
        badge = page.locator(f'.djs-overlays[data-container-id="{element_id}"] .cw-heat-count')
        counts[element_id] = int(badge.inner_text())
    return counts


def table_counts(page) -> dict[str, int]:
    """The cases per step the table under the diagram lists, by element id."""
    rows = page.locator("table.element-loads tbody tr[data-element-id]")
    return {row.get_attribute("data-element-id"): int(row.locator("[data-cases]").inner_text())
            for row in rows.all()}


def test_a_supervisor_sees_where_acute_cases_wait_and_opens_one_from_its_count(live_server, new_page):
    page = new_page(1400, 1000)
    sign_in(page, live_server, "sue")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Processes").click()
    page.wait_for_url(re.compile(r"/processes$"))
    acute = page.locator('tr[data-process-id="acute_stay"]')
    running = int(acute.locator("[data-running-cases]").inner_text())
    acute.locator("td.task a").click()
    page.wait_for_url(re.compile(r"/processes/acute_stay$"))
    page.wait_for_selector("[data-bpmn-diagram][data-diagram-state='ready']")

    drawn = badge_counts(page)
    assert drawn and drawn == table_counts(page), "every count in the table stands on its element, and no other"
    # Discharge planning (a call activity) runs beside the whole stay: every running acute case is inside it.
    assert drawn["discharge_planning"] == running == max(drawn.values())
    assert page.get_by_role("alert").count() == 0
    busiest = page.locator('[data-element-id="discharge_planning"] .djs-visual > :nth-child(1)').evaluate(
        "shape => getComputedStyle(shape).fill")
    assert busiest == "rgb(255, 191, 158)", "the busiest steps are shaded darkest, over bpmn-js's inline styles"
    screenshot(page, "process-heatmap")

    # A badge is a link to the list of the cases waiting there.
    page.locator('.djs-overlays[data-container-id="admission_review"] .cw-heat-count').click()
    page.wait_for_url(re.compile(r"/processes/acute_stay/elements/admission_review\?version=1$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Admission status review"
    rows = page.locator("table.waiting-cases tbody tr[data-case-id]")
    assert rows.count() == drawn["admission_review"]

    # From the list to the case itself, which waits at that review.
    case_id = rows.first.get_attribute("data-case-id")
    rows.first.locator("td.case a").click()
    page.wait_for_url(re.compile(rf"/cases/{case_id}$"))
    assert "Admission status review" in page.locator("section[aria-labelledby='open-tasks']").inner_text()


def test_clicking_an_element_opens_its_cases_and_a_called_diagram_has_its_own_view(live_server, new_page):
    page = new_page()
    sign_in(page, live_server, "sue")
    page.goto(f"{live_server}/processes/acute_stay")
    page.wait_for_selector("[data-bpmn-diagram][data-diagram-state='ready']")
    waiting = badge_counts(page)["discharge_planning"]
    shape = page.locator('g.djs-element[data-element-id="discharge_planning"]')
    box = shape.bounding_box()
    shape.click(position={"x": box["width"] - 3, "y": box["height"] - 3})  # the shape itself, clear of its badges
    page.wait_for_url(re.compile(r"/elements/discharge_planning\?version=1$"))
    assert page.locator("table.waiting-cases tbody tr[data-case-id]").count() == waiting

    page.goto(f"{live_server}/processes/acute_stay?diagram=discharge_planning.bpmn")
    page.wait_for_selector("[data-bpmn-diagram][data-diagram-state='ready']")
    drawn = badge_counts(page)
    assert drawn == table_counts(page) and "discharge_planning" not in drawn
    assert max(drawn.values()) <= waiting <= sum(drawn.values()), "the called diagram's own steps hold those cases"
