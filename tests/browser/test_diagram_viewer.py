"""The case diagram viewer in headless chromium: bpmn-js draws a real diagram and case-diagram.js marks progress.

The page around the viewer is a harness fulfilled by Playwright, so this tests the viewer script and the vendor
route on their own; the scripts and styles themselves come from the real server, behind sign-in.
"""
from __future__ import annotations

import json

from tests.browser.conftest import REPO, screenshot
from tests.browser.test_inbox_in_the_browser import sign_in

DIAGRAM = REPO / "bpmn" / "acute_hospital" / "acute_stay.bpmn"
MARKS = {
    "process_id": "acute_stay",
    "completed": ["order_received", "apply_stay_policy", "stay_split", "flow_reviews_start_to_split"],
    "active": {"admission_review": 1, "deliver_im": 2, "not_in_this_diagram": 1},
    "errored": {"start_im_clock": "Script failed: name 'admit_time' is not defined"},
    "waiting": ["gmlos_reached"],
}
HARNESS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Diagram harness</title>
<link rel="stylesheet" href="/vendor/bpmn-js/assets/diagram-js.css">
<link rel="stylesheet" href="/vendor/bpmn-js/assets/bpmn-js.css">
<link rel="stylesheet" href="/vendor/bpmn-js/assets/bpmn-font/css/bpmn.css">
<link rel="stylesheet" href="/static/diagram.css">
</head><body>
<div data-bpmn-diagram data-diagram-url="/__harness/{diagram}" data-marks-url="/__harness/marks.json"></div>
<script src="/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js"></script>
<script src="/static/case-diagram.js"></script>
</body></html>"""


def open_harness(page, base_url: str, *, diagram: str) -> None:
    """Serve the harness page, a diagram and the marks from Playwright; everything else from the server."""
    files = {
        "/__harness": ("text/html", HARNESS.replace("{diagram}", diagram)),
        "/__harness/acute_stay.bpmn": ("application/xml", DIAGRAM.read_text()),
        "/__harness/broken.bpmn": ("application/xml", "<bpmn:definitions xmlns:bpmn='oops'><unclosed>"),
        "/__harness/marks.json": ("application/json", json.dumps(MARKS)),
    }
    for path, (content_type, body) in files.items():
        page.route(f"{base_url}{path}", lambda route, content_type=content_type, body=body:
                   route.fulfill(status=200, content_type=content_type, body=body))
    page.goto(f"{base_url}/__harness")


def test_a_case_diagram_shows_completed_active_errored_and_waiting_elements(live_server, new_page):
    page = new_page()
    sign_in(page, live_server, "carla")
    open_harness(page, live_server, diagram="acute_stay.bpmn")

    container = page.locator("[data-bpmn-diagram]")
    page.wait_for_selector("[data-bpmn-diagram][data-diagram-state='ready']")
    for element_id in MARKS["completed"]:
        assert page.locator(f'[data-element-id="{element_id}"].cw-completed').count() == 1, element_id
    assert page.locator('[data-element-id="admission_review"].cw-active').count() == 1
    assert page.locator('[data-element-id="deliver_im"].cw-active').count() == 1
    assert page.locator('[data-element-id="start_im_clock"].cw-errored').count() == 1
    assert page.locator('[data-element-id="gmlos_reached"].cw-waiting').count() == 1
    assert container.get_attribute("data-marked-active") == "admission_review deliver_im", \
        "an id the diagram does not have is ignored"

    tokens = page.locator(".cw-badge-tokens")
    assert tokens.count() == 1 and tokens.inner_text() == "2", "only an element holding more than one token has a count"
    incident = page.locator(".cw-badge-error")
    assert incident.get_attribute("title") == MARKS["errored"]["start_im_clock"]

    active_stroke = page.locator('[data-element-id="admission_review"] .djs-visual > :nth-child(1)').evaluate(
        "shape => getComputedStyle(shape).stroke")
    assert active_stroke == "rgb(31, 95, 191)", "the marker styles win over bpmn-js's inline styles"
    assert page.get_by_role("alert").count() == 0
    screenshot(page, "case-diagram-marked")


def test_a_diagram_that_cannot_be_read_shows_a_message_instead(live_server, new_page):
    page = new_page()
    sign_in(page, live_server, "carla")
    open_harness(page, live_server, diagram="broken.bpmn")

    page.wait_for_selector("[data-bpmn-diagram][data-diagram-state='error']")
    alert = page.locator("[data-bpmn-diagram]").get_by_role("alert")
    assert alert.is_visible()
    assert alert.inner_text().startswith("The diagram could not be shown")
    assert page.locator("[data-bpmn-diagram] svg").count() == 0
    screenshot(page, "case-diagram-unreadable")


def test_a_missing_diagram_says_what_the_server_answered(live_server, new_page):
    page = new_page()
    sign_in(page, live_server, "carla")
    open_harness(page, live_server, diagram="not-served.bpmn")  # reaches the real server, which has no such page

    page.wait_for_selector("[data-bpmn-diagram][data-diagram-state='error']")
    assert "the server answered 404" in page.locator("[data-bpmn-diagram]").get_by_role("alert").inner_text()
