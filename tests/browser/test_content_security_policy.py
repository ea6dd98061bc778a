"""Every kind of page, in headless chromium, under the Content-Security-Policy the server sends: nothing refused.

A page that breaks the policy (an inline script, an onclick, an injected <style>, a style the policy
does not allow) still loads, so the test listens for the browser's securitypolicyviolation events
and its console, and checks that the diagrams and charts were actually drawn.
"""
from __future__ import annotations

import json
import re
import urllib.request

from tests.browser.conftest import REPO
from tests.browser.test_inbox_in_the_browser import sign_in

LISTEN = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (event) {
  window.__cspViolations.push(event.violatedDirective + ' blocked ' + (event.blockedURI || 'inline') +
                              ' at ' + event.sourceFile + ':' + event.lineNumber + ' ' + event.sample);
});
"""
DIAGRAM_READY = "[data-bpmn-diagram][data-diagram-state='ready']"


class PolicyWatch:
    """One signed-in person's browser page, noting every refusal the policy causes on every page visited."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.base_url = base_url
        self.console: list[str] = []
        page.add_init_script(LISTEN)
        page.on("console", lambda message: self.console.append(message.text)
                if "Content Security Policy" in message.text else None)

    def visit(self, path: str, *, status: int = 200):
        """Open a page, check it came with the policy, and return its response."""
        response = self.page.goto(f"{self.base_url}{path}")
        assert response.status == status, f"{path}: {response.status}"
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "object-src 'none'" in policy, f"{path} came without the policy"
        # The one relaxation any page may have is style attributes (the modeler's; tests/web checks which pages).
        assert "unsafe" not in policy.replace("style-src-attr 'unsafe-inline'", ""), policy
        return response

    def refusals(self) -> list[str]:
        """What the policy refused on the current page, from its events and the console."""
        events = self.page.evaluate("window.__cspViolations || []")
        found, self.console = events + self.console, []
        return found

    def assert_clean(self, what: str) -> None:
        self.page.wait_for_load_state("networkidle")
        refused = self.refusals()
        assert refused == [], f"the policy refused something on the {what}: " + "\n".join(refused)


def svg_count(page, selector: str) -> int:
    return page.locator(f"{selector} svg").count()


def deploy_version_two(base_url: str) -> None:
    """Deploy the acute set again with one task renamed, as dana through the API, so versions 1 and 2 differ."""
    files = {path.relative_to(REPO / "bpmn" / "acute_hospital").as_posix(): path.read_text()
             for path in sorted((REPO / "bpmn" / "acute_hospital").rglob("*")) if path.is_file()}
    stay = files["acute_stay.bpmn"]
    files["acute_stay.bpmn"] = re.sub(r'(id="admission_review" name=")[^"]*"', r'\1Admission review (v2)"', stay,
                                      count=1)
    assert files["acute_stay.bpmn"] != stay
    request = urllib.request.Request(
        f"{base_url}/api/v1/process-versions", method="POST",
        data=json.dumps({"name": "acute_hospital", "files": files, "note": "renamed a task"}).encode(),
        headers={"Authorization": "Bearer demo-dana-token", "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 201


def test_sign_in_inbox_task_case_and_error_pages_keep_to_the_policy(live_server, new_page):
    watch = PolicyWatch(new_page(), live_server)
    watch.visit("/signin")
    watch.assert_clean("sign-in page")
    sign_in(watch.page, live_server, "carla")
    watch.assert_clean("inbox")

    watch.visit("/inbox?view=team")
    task_link = watch.page.locator("table.tasks tbody tr[data-task-id] td.task a").first
    task_path = task_link.get_attribute("href")
    watch.visit(task_path)
    assert watch.page.locator("form.task-form input, form.task-form select, form.task-form textarea").count() > 2
    watch.assert_clean("task page")

    case_path = watch.page.get_by_role("navigation", name="Breadcrumb").get_by_role("link").nth(1).get_attribute("href")
    watch.visit(case_path)
    watch.page.wait_for_selector(DIAGRAM_READY)
    assert svg_count(watch.page, "[data-bpmn-diagram]") > 0, "the case's diagram was drawn"
    assert watch.page.locator("[data-bpmn-diagram] .djs-element").count() > 10
    watch.assert_clean("case page")

    watch.visit("/cases/999999", status=404)
    assert watch.page.get_by_role("heading", level=1).count() == 1
    watch.assert_clean("error page")
    watch.visit("/no/such/page", status=404)
    watch.assert_clean("page for an unknown address")


def test_supervisor_pages_with_diagrams_and_charts_keep_to_the_policy(live_server, new_page):
    deploy_version_two(live_server)
    watch = PolicyWatch(new_page(1400, 1000), live_server)
    sign_in(watch.page, live_server, "sue")

    watch.visit("/stuck")
    assert watch.page.locator("table").count() > 0
    watch.assert_clean("stuck-case list")

    watch.visit("/kpis")
    assert svg_count(watch.page, "figure.kpi-chart") > 0, "the KPI charts were drawn"
    watch.assert_clean("KPI page")

    watch.visit("/processes")
    watch.assert_clean("process list")
    watch.visit("/processes/acute_stay?version=1")
    watch.page.wait_for_selector(DIAGRAM_READY)
    assert svg_count(watch.page, "[data-bpmn-diagram]") > 0 and watch.page.locator(".cw-heat-count").count() > 0
    watch.assert_clean("process view with its heat map")

    watch.visit("/processes/acute_stay/diff?from=1&to=2")
    assert "Admission review (v2)" in watch.page.locator("body").inner_text()
    watch.assert_clean("process diff")

    watch.visit("/processes/acute_stay/migrate?to=2")
    assert watch.page.locator("tr[data-case-id]").count() > 0
    watch.assert_clean("migrate page")


def test_designer_list_and_modeler_keep_to_the_policy(live_server, new_page):
    watch = PolicyWatch(new_page(1400, 1000), live_server)
    sign_in(watch.page, live_server, "dana")
    watch.visit("/designer")
    watch.assert_clean("designer list")

    watch.visit("/designer/sets/acute_hospital")
    watch.page.wait_for_selector("[data-designer][data-open-file='acute_stay.bpmn']")
    watch.page.wait_for_function("() => !document.querySelector('[data-designer]').hasAttribute('aria-busy')")
    assert svg_count(watch.page, "#designer-canvas") > 0, "the modeler drew the diagram"
    assert watch.page.locator("#designer-canvas .djs-palette .entry").count() > 5, "the modeler's palette is there"
    # Two shapes selected: the context pad offers to align them, in a popup menu of icons bpmn-js builds as markup.
    canvas = watch.page.locator("#designer-canvas")
    canvas.locator('g.djs-element[data-element-id="admission_review"]').click()
    canvas.locator('g.djs-element[data-element-id="deliver_im"]').click(modifiers=["Shift"])
    canvas.locator(".djs-context-pad .entry[data-action='align-elements']").click()
    assert watch.page.locator(".djs-popup .entry svg").count() > 0, "the align menu's icons are drawn"
    watch.page.keyboard.press("Escape")
    # One shape selected: its context pad, and the wrench's popup menu of replacements.
    canvas.locator('g.djs-element[data-element-id="admission_review"]').click()
    canvas.locator(".djs-context-pad .entry[data-action='replace']").click()
    watch.page.wait_for_selector(".djs-popup .entry")
    watch.assert_clean("modeler")


def test_the_administrators_pages_keep_to_the_policy(live_server, new_page):
    watch = PolicyWatch(new_page(), live_server)
    sign_in(watch.page, live_server, "admin")
    watch.visit("/admin/users")
    assert watch.page.get_by_role("heading", level=1).inner_text() == "Users"
    watch.assert_clean("user list")
    watch.visit("/admin/users/carla")
    watch.assert_clean("user page")
    watch.page.locator("#token-name").fill("ADT feed")
    watch.page.get_by_role("button", name="Issue the token").click()
    watch.page.wait_for_load_state()
    assert watch.page.url.endswith("/admin/users/carla/tokens")
    watch.assert_clean("page showing a new token")
