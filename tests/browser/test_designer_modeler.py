"""The designer's editor in headless chromium: bpmn-js's modeler on a set's draft, with Casework's properties panel,
validation markers and test coverage drawn on the diagram, against the real draft endpoints and database."""
from __future__ import annotations

import re
from collections import Counter

from lxml import etree

from tests.browser.conftest import REPO, screenshot
from tests.browser.test_inbox_in_the_browser import sign_in

SET = "acute_hospital"
EDITOR = f"/designer/sets/{SET}"
SPIFF = "{http://spiffworkflow.org/bpmn/schema/1.0/core}"
BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
CANVAS = "#designer-canvas"
ROUND_TRIP = """async (xml) => {
  const modeler = new window.BpmnJS({container: document.createElement('div'),
                                     moddleExtensions: {spiffworkflow: window.CaseworkDesigner.spiffworkflowModdle}});
  const imported = await modeler.importXML(xml);
  const saved = await modeler.saveXML({format: true});
  modeler.destroy();
  return {warnings: imported.warnings.map(warning => warning.message), xml: saved.xml};
}"""


def open_editor(page, base_url: str, *, user: str = "dana") -> None:
    """Sign in and open the acute set's editor with its first diagram loaded."""
    sign_in(page, base_url, user)
    page.goto(f"{base_url}{EDITOR}")
    page.wait_for_selector("[data-designer][data-open-file='acute_stay.bpmn']")
    settle(page)


def settle(page) -> None:
    """Wait until the page's request in flight (load, save, validate, tests ...) has answered."""
    # A function, not an expression: Playwright evals an expression on every poll, which the pages' CSP refuses.
    page.wait_for_function("() => !document.querySelector('[data-designer]').hasAttribute('aria-busy')", timeout=60_000)


def press(page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()
    settle(page)


def edit(page, label: str, value: str) -> None:
    """Type a new value into a panel field and leave it, as a person does."""
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Tab")


def choose(page, element_id: str) -> None:
    page.get_by_label("Element", exact=True).select_option(element_id)
    page.wait_for_function(f"() => document.getElementById('prop-id') && document.getElementById('prop-id').value === '{element_id}'")


def draft_file(page, base_url: str, path: str) -> str:
    response = page.request.get(f"{base_url}{EDITOR}/draft/files/{path}")
    assert response.ok, response.status
    return response.text()


def status(page) -> str:
    return page.locator("[data-status]").inner_text()


def alert(page) -> str:
    return page.locator("[data-alert]").inner_text()


def semantics(xml: str) -> dict:
    """What a modeler must keep of a diagram: extensions, attributes, texts and layout (bpmn-js reformats the XML).

    bpmn-js writes a correlation's messagePath as bpmn:formalExpression; SpiffWorkflow's parser reads either.
    """
    root = etree.fromstring(xml.encode())

    def owner(element) -> str:
        while element is not None and element.get("id") is None:
            element = element.getparent()
        return element.get("id") if element is not None else ""

    def tag(element) -> str:
        name = element.tag.replace(SPIFF, "spiffworkflow:").replace(BPMN, "bpmn:")
        return "bpmn:messagePath" if name == "bpmn:formalExpression" else name

    elements = [element for element in root.iter() if isinstance(element.tag, str)]
    return {
        "spiffworkflow": sorted((owner(e), tag(e), (e.text or "").strip(), sorted(e.attrib.items()))
                                for e in elements if e.tag.startswith(SPIFF)),
        "attributes": sorted((owner(e), tag(e), key, value) for e in elements for key, value in e.attrib.items()),
        "texts": sorted((owner(e), tag(e), (e.text or "").strip()) for e in elements if (e.text or "").strip()),
        "ids": sorted(e.get("id") for e in elements if e.get("id")),
    }


def spiff_counts(xml: str) -> Counter:
    return Counter(element.tag for element in etree.fromstring(xml.encode()).iter()
                   if isinstance(element.tag, str) and element.tag.startswith(SPIFF))


def test_a_due_rule_changed_in_the_panel_is_saved_to_the_draft_and_shown_after_a_reload(live_server, new_page):
    page = new_page(1400, 1000)
    open_editor(page, live_server)
    assert page.locator("[data-draft-info]").inner_text().startswith("No draft yet")

    page.locator(f'{CANVAS} .djs-element[data-element-id="admission_review"]').click()
    assert page.get_by_label("Id", exact=True).input_value() == "admission_review"
    assert page.get_by_label("Lane (who does it)").input_value() == "case_manager"
    assert page.get_by_label("Due in", exact=True).input_value() == "admission_review_due"
    edit(page, "Due in", "PT36H")
    assert page.locator("[data-dirty]").is_visible()

    press(page, "Save draft")
    assert status(page).startswith("Saved acute_stay.bpmn as draft revision 1"), status(page) + alert(page)
    assert not page.locator("[data-dirty]").is_visible()
    assert page.get_by_role("tab", name="acute_stay.bpmn").get_attribute("aria-selected") == "true"
    screenshot(page, "designer-due-rule-saved")

    page.reload()
    page.wait_for_selector("[data-designer][data-open-file='acute_stay.bpmn']")
    settle(page)
    assert "revision 1, last saved by dana" in page.locator("[data-draft-info]").inner_text()
    choose(page, "admission_review")
    assert page.get_by_label("Due in", exact=True).input_value() == "PT36H"

    saved = etree.fromstring(draft_file(page, live_server, "acute_stay.bpmn").encode())
    task = saved.find(f".//{BPMN}userTask[@id='admission_review']")
    properties = {p.get("name"): p.get("value") for p in task.iter(f"{SPIFF}property")}
    assert properties["dueIn"] == "PT36H"
    assert properties["calendar"] == "business" and properties["dueFrom"] == "order_at", "the other properties stay"


def test_emptying_a_field_removes_its_property_and_undo_brings_it_back(live_server, new_page):
    page = new_page(1400, 1000)
    open_editor(page, live_server)
    choose(page, "admission_review")

    edit(page, "Calendar", "")
    press(page, "Save draft")
    task = etree.fromstring(draft_file(page, live_server, "acute_stay.bpmn").encode()).find(
        f".//{BPMN}userTask[@id='admission_review']")
    assert [p.get("name") for p in task.iter(f"{SPIFF}property")].count("calendar") == 0

    press(page, "Undo")
    assert page.get_by_label("Calendar", exact=True).input_value() == "business"
    assert page.locator("[data-dirty]").is_visible(), "an undone edit is an unsaved change"


def test_an_unquoted_timer_expression_is_marked_on_the_diagram_until_it_is_fixed(live_server, new_page):
    page = new_page(1400, 1000)
    open_editor(page, live_server)
    choose(page, "gmlos_reached")
    assert page.get_by_label("Timer type").input_value() == "timeDate"
    assert 'quote a literal value, e.g. "PT24H"' in page.locator("#prop-timerExpression-hint").inner_text()
    edit(page, "Timer expression", "PT24H")

    press(page, "Validate")
    assert status(page) == "Validated the draft; its problems are listed below.", status(page) + alert(page)
    problem = page.locator('[data-problems] li.problem-error[data-element-id="gmlos_reached"]')
    assert problem.count() == 1
    assert "'PT24H' must be quoted" in problem.inner_text() and "Error" in problem.inner_text()
    assert "cannot be deployed" in page.locator("[data-problem-summary]").inner_text()
    assert page.locator(f'{CANVAS} .djs-element[data-element-id="gmlos_reached"].lint-error').count() == 1
    assert page.locator('.djs-overlays[data-container-id="gmlos_reached"] .cw-badge-error').count() == 1
    screenshot(page, "designer-timer-problem")

    page.get_by_label("Element", exact=True).select_option("")
    problem.get_by_role("button").click()
    assert page.get_by_label("Id", exact=True).input_value() == "gmlos_reached", "a problem leads to its element"

    # 24 hours after the timer starts is a duration, quoted: a literal in a Python expression.
    page.get_by_label("Timer type").select_option(label="Duration")
    edit(page, "Timer expression", '"PT24H"')
    press(page, "Validate")
    assert page.locator('[data-problems] li[data-element-id="gmlos_reached"]').count() == 0, page.locator("[data-problems]").inner_text()
    assert page.locator(f"{CANVAS} .lint-error").count() == 0
    assert page.locator(".djs-overlays .cw-badge-error").count() == 0
    saved = etree.fromstring(draft_file(page, live_server, "acute_stay.bpmn").encode())
    timer = saved.find(f".//{BPMN}intermediateCatchEvent[@id='gmlos_reached']/{BPMN}timerEventDefinition")
    assert [(child.tag.replace(BPMN, ""), child.text) for child in timer] == [("timeDuration", '"PT24H"')]


def test_running_the_tests_lists_each_result_and_marks_reached_and_unreached_steps(live_server, new_page):
    page = new_page(1400, 1000)
    open_editor(page, live_server)
    # A condition that never holds: the GMLOS review becomes unreachable and the tests expecting it fail.
    choose(page, "flow_gmlos_known")
    assert page.get_by_label("Condition", exact=True).input_value() == "gmlos_review_at is not None"
    edit(page, "Condition", "False")

    press(page, "Run tests")
    outcomes = page.locator("[data-tests] li.test")
    assert outcomes.count() == len(list((REPO / "bpmn" / SET / "tests").glob("*.yaml"))), alert(page)
    failed = page.locator("[data-tests] li.test-failed")
    assert failed.count() >= 1 and "✖ Failed" in failed.first.inner_text()
    assert "gmlos_reached" in failed.first.locator(".test-failures").inner_text()
    assert page.locator("[data-tests] li.test-passed").count() >= 1
    assert "failed" in page.locator("[data-test-summary]").inner_text()

    designer = page.locator("[data-designer]")
    assert "admission_review" in designer.get_attribute("data-covered").split()
    assert "gmlos_reached" in designer.get_attribute("data-uncovered").split()
    assert page.locator(f'{CANVAS} .djs-element[data-element-id="admission_review"].cw-covered').count() == 1
    assert page.locator(f'{CANVAS} .djs-element[data-element-id="gmlos_reached"].cw-uncovered').count() == 1
    assert re.search(r"\d+% of this file's flow nodes reached", page.locator("[data-coverage-note]").inner_text())
    screenshot(page, "designer-coverage")

    page.get_by_label("Show test coverage on the diagram").uncheck()
    assert page.locator(f"{CANVAS} .cw-covered, {CANVAS} .cw-uncovered").count() == 0
    page.get_by_label("Show test coverage on the diagram").check()
    assert page.locator(f"{CANVAS} .cw-uncovered").count() >= 1


def test_saving_without_edits_keeps_every_spiffworkflow_extension_and_the_layout(live_server, new_page):
    page = new_page(1400, 1000)
    open_editor(page, live_server)
    before = draft_file(page, live_server, "acute_stay.bpmn")

    press(page, "Save draft")
    assert status(page).startswith("Saved"), alert(page)
    after = draft_file(page, live_server, "acute_stay.bpmn")

    assert spiff_counts(before) == spiff_counts(after) and sum(spiff_counts(after).values()) > 100
    assert semantics(before) == semantics(after)
    assert after.count("<bpmndi:BPMNShape") == before.count("<bpmndi:BPMNShape")
    assert after.count("<bpmndi:BPMNEdge") == before.count("<bpmndi:BPMNEdge")


def test_every_bundled_diagram_keeps_its_content_through_the_modeler(live_server, new_page):
    page = new_page()
    open_editor(page, live_server)
    diagrams = sorted((REPO / "bpmn").glob("*/*.bpmn"))
    assert diagrams
    for path in diagrams:
        original = path.read_text()
        result = page.evaluate(ROUND_TRIP, original)
        assert result["warnings"] == [], path
        assert semantics(result["xml"]) == semantics(original), path


def test_a_save_over_another_designers_newer_save_is_refused_and_the_draft_can_be_reloaded(live_server, new_page):
    dana, admin = new_page(1400, 1000), new_page(1400, 1000)
    open_editor(dana, live_server)
    open_editor(admin, live_server, user="admin")

    choose(admin, "admission_review")
    edit(admin, "Due in", "PT8H")
    press(admin, "Save draft")
    assert status(admin).startswith("Saved"), alert(admin)

    choose(dana, "admission_review")
    edit(dana, "Due in", "PT12H")
    press(dana, "Save draft")
    conflict = dana.locator("[data-conflict]")
    assert conflict.is_visible()
    assert "admin" in conflict.inner_text() and "revision 1" in conflict.inner_text()
    assert dana.get_by_role("link", name="Download your version").get_attribute("href").startswith("blob:")
    assert 'value="PT8H"' in draft_file(dana, live_server, "acute_stay.bpmn"), "the refused save changed nothing"

    dana.once("dialog", lambda dialog: dialog.accept())  # "your unsaved changes will be lost"
    conflict.get_by_role("button", name="Reload the draft").click()
    settle(dana)
    choose(dana, "admission_review")
    assert dana.get_by_label("Due in", exact=True).input_value() == "PT8H"
    assert not conflict.is_visible()


def test_a_draft_with_errors_is_not_deployed_and_a_clean_one_is(live_server, new_page):
    page = new_page(1400, 1000)
    open_editor(page, live_server)
    choose(page, "gmlos_reached")
    edit(page, "Timer expression", "P1D")
    page.get_by_label("What changed and why").fill("GMLOS review one day after the order.")
    page.get_by_role("button", name="Deploy", exact=True).click()
    settle(page)
    assert page.locator('[data-problems] li.problem-error[data-element-id="gmlos_reached"]').count() == 1, alert(page)
    assert page.locator(f'{CANVAS} .djs-element[data-element-id="gmlos_reached"].lint-error').count() == 1
    assert "/designer/sets/" in page.url

    page.get_by_label("Timer type").select_option(label="Duration")
    edit(page, "Timer expression", '"P1D"')
    page.get_by_role("button", name="Deploy", exact=True).click()
    page.wait_for_url(re.compile(r"/designer$"))
    deployed = page.request.get(f"{live_server}{EDITOR}/draft/files/acute_stay.bpmn").text()
    assert '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">"P1D"</bpmn:timeDuration>' in deployed, \
        "after the deployment the editor starts from the new version"


def test_leaving_with_unsaved_changes_asks_first(live_server, new_page):
    page = new_page()
    open_editor(page, live_server)
    choose(page, "admission_review")
    edit(page, "Name", "Admission review")
    asked = []
    page.on("dialog", lambda dialog: (asked.append(dialog.type), dialog.dismiss()))
    page.close(run_before_unload=True)
    page.wait_for_timeout(500)
    assert asked == ["beforeunload"]


def test_a_supervisor_reads_the_draft_and_validates_it_but_cannot_change_it(live_server, new_page):
    page = new_page(1400, 1000)
    open_editor(page, live_server, user="sue")
    assert "only designers and administrators change diagrams" in page.get_by_role("note").inner_text()
    for name in ("Save draft", "Discard draft", "Deploy", "Upload"):
        assert page.get_by_role("button", name=name, exact=True).count() == 0, name

    choose(page, "admission_review")
    due_in = page.get_by_label("Due in", exact=True)
    assert due_in.input_value() == "admission_review_due" and not due_in.is_editable()

    press(page, "Validate")
    assert status(page).startswith("Validated the draft"), alert(page)
    assert alert(page) == ""


def test_switching_diagrams_with_unsaved_changes_asks_first_and_keeps_them_when_refused(live_server, new_page):
    page = new_page(1400, 1000)
    open_editor(page, live_server)
    choose(page, "admission_review")
    edit(page, "Name", "Admission review (edited)")

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("tab", name="discharge_planning.bpmn").click()
    assert page.locator("[data-designer]").get_attribute("data-open-file") == "acute_stay.bpmn"
    assert page.get_by_label("Name", exact=True).input_value() == "Admission review (edited)"

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("tab", name="discharge_planning.bpmn").click()
    page.wait_for_selector("[data-designer][data-open-file='discharge_planning.bpmn']")
    assert page.get_by_role("tab", name="discharge_planning.bpmn").get_attribute("aria-selected") == "true"
    assert page.locator(f'{CANVAS} .djs-element[data-element-id="admission_review"]').count() == 0


def test_an_upload_with_errors_is_refused_whole_and_a_clean_one_replaces_the_file(live_server, new_page, tmp_path):
    page = new_page(1400, 1000)
    open_editor(page, live_server)
    original = (REPO / "bpmn" / SET / "acute_stay.bpmn").read_text()
    broken = tmp_path / "broken" / "acute_stay.bpmn"
    broken.parent.mkdir()
    broken.write_text(original.replace(">gmlos_review_at</bpmn:timeDate>", ">P5D</bpmn:timeDate>"))

    page.get_by_label("Files to upload").set_input_files(str(broken))
    page.get_by_role("button", name="Upload", exact=True).click()
    settle(page)
    assert page.locator('[data-problems] li.problem-error[data-element-id="gmlos_reached"]').count() == 1, alert(page)
    assert page.request.get(f"{live_server}{EDITOR}/draft.json").json()["revision"] == 0, "nothing was stored"

    renamed = tmp_path / "acute_stay.bpmn"
    renamed.write_text(original.replace('name="Admission status review"', 'name="Admission review (uploaded)"'))
    page.get_by_label("Files to upload").set_input_files(str(renamed))
    page.get_by_role("button", name="Upload", exact=True).click()
    settle(page)
    assert status(page) == "Uploaded; the draft is now at revision 1.", alert(page)
    choose(page, "admission_review")
    assert page.get_by_label("Name", exact=True).input_value() == "Admission review (uploaded)"
