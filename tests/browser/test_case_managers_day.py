"""A case manager's day in headless chromium: filter, claim, a refused form, complete, the case page, notes, ad-hoc work."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.test_inbox_in_the_browser import sign_in

REVIEW = "Admission status review"


def test_a_case_manager_works_a_review_from_queue_to_case_page(live_server, new_page):
    carla = new_page()
    sign_in(carla, live_server, "carla")

    # Filter the team queue to one kind of task and claim the first.
    carla.get_by_role("link", name=re.compile("My team's queue")).click()
    carla.get_by_label("Task", exact=True).select_option(label=REVIEW)
    carla.get_by_role("button", name="Apply").click()
    carla.wait_for_url(re.compile(r"task=admission_review"))
    rows = carla.locator("table.tasks tbody tr[data-task-id]")
    assert rows.count() > 0 and set(carla.locator("table.tasks td.task a").all_inner_texts()) == {REVIEW}
    task_id = rows.first.get_attribute("data-task-id")
    rows.first.get_by_role("button", name=re.compile("^Claim")).click()
    expect(carla.get_by_role("status").first).to_contain_text("You claimed")

    # A colleague with the same role no longer sees it in the team queue.
    sue = new_page()
    sign_in(sue, live_server, "sue")
    sue.goto(f"{live_server}/?view=team&task=admission_review")
    assert sue.locator(f"tr[data-task-id='{task_id}']").count() == 0

    # Open it from My tasks.
    carla.get_by_role("link", name=re.compile("My tasks")).click()
    carla.locator(f"tr[data-task-id='{task_id}'] td.task a").click()
    carla.wait_for_url(re.compile(rf"/tasks/{task_id}$"))
    assert carla.get_by_role("heading", level=1).inner_text().startswith(REVIEW)
    screenshot(carla, "task-form")

    # An invalid form: a required answer missing and a number out of range. Errors by the fields, values kept.
    carla.get_by_role("group", name=re.compile("Recommended status")).get_by_label("Inpatient").check()
    carla.get_by_label(re.compile("Expected midnights")).fill("400")
    carla.get_by_label(re.compile("Working diagnosis")).fill("Community-acquired pneumonia")
    carla.get_by_role("button", name="Complete task").click()
    expect(carla.get_by_role("alert").first).to_be_visible()
    midnights = carla.get_by_label(re.compile("Expected midnights"))
    expect(midnights).to_have_attribute("aria-invalid", "true")
    assert midnights.input_value() == "400", "what was typed is kept"
    assert carla.get_by_label(re.compile("Working diagnosis")).input_value() == "Community-acquired pneumonia"
    assert carla.get_by_role("group", name=re.compile("Recommended status")).get_by_label("Inpatient").is_checked()
    criteria = carla.get_by_role("group", name=re.compile("Criteria met"))
    assert "required" in criteria.inner_text().lower(), "the missing answer is named next to its question"
    assert "365" in carla.locator(".field-error").all_inner_texts().__str__(), "the range is named"
    screenshot(carla, "task-form-errors")

    # Corrected and completed: back to the inbox with a confirmation and the next task offered.
    midnights.fill("2")
    criteria.get_by_label("Yes").check()
    carla.get_by_role("button", name="Complete task").click()
    carla.wait_for_url(re.compile(r"/inbox$"))
    assert f"Completed “{REVIEW}”" in carla.get_by_role("status").first.inner_text()
    next_link = carla.locator("#next-task a")
    assert next_link.is_visible(), "the next task is offered"
    assert carla.locator(f"tr[data-task-id='{task_id}']").count() == 0, "the completed task has left My tasks"
    next_link.click()
    carla.wait_for_url(re.compile(r"/tasks/\d+$"))

    # The case page: the diagram with the active step marked, the history, the notes.
    carla.get_by_role("link", name=re.compile("Open the case")).click()
    carla.wait_for_url(re.compile(r"/cases/\d+$"))
    case_url = carla.url
    diagram = carla.locator("#case-diagram")
    diagram.and_(carla.locator("[data-diagram-state='ready']")).wait_for()
    active = (diagram.get_attribute("data-marked-active") or "").split()
    assert active, "the case's active steps are marked on the diagram"
    assert carla.locator(f"#case-diagram [data-element-id='{active[0]}'].cw-active").count() >= 1
    assert carla.locator(".timeline").get_by_text(re.compile(f"completed: {REVIEW}")).count() == 1
    screenshot(carla, "case-page")

    carla.get_by_label("Add a note").fill("Daughter is the contact for discharge planning; prefers calls after 4 pm.")
    carla.get_by_role("button", name="Add note").click()
    carla.wait_for_url(re.compile(r"/cases/\d+#notes$"))
    assert carla.locator(".notes li").first.get_by_text(re.compile("prefers calls after 4 pm")).is_visible()

    # An ad-hoc task: refused without a title, then added for herself and found in her inbox.
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT10:00")
    carla.get_by_label("Due").fill(tomorrow)
    carla.get_by_label("For", exact=True).select_option("user:carla")
    carla.get_by_role("button", name="Add task").click()
    expect(carla.get_by_label("Title")).to_have_attribute("aria-invalid", "true")
    assert carla.get_by_label("Due").input_value() == tomorrow, "the entered due time is kept"
    carla.get_by_label("Title").fill("Call the daughter about the discharge plan")
    carla.get_by_role("button", name="Add task").click()
    carla.wait_for_url(re.compile(r"#open-tasks$"))
    assert carla.locator("table.tasks").get_by_text("Call the daughter about the discharge plan").is_visible()
    carla.goto(f"{live_server}/inbox")
    assert carla.locator("table.tasks td.task a", has_text="Call the daughter about the discharge plan").count() == 1
    assert case_url


def test_a_user_outside_a_cases_setting_or_a_tasks_role_is_refused(live_server, new_page):
    nick = new_page()  # workers' comp only
    sign_in(nick, live_server, "nick")
    response = nick.goto(f"{live_server}/cases/1")
    assert response.status == 404
    assert "Case 1 does not exist." in nick.locator("main").inner_text()

    pat = new_page()  # acute hospital, physician advisor: not a case manager's task
    sign_in(pat, live_server, "pat")
    carla_task = pat.request.get(f"{live_server}/tasks/1")
    assert carla_task.status == 403


def test_the_task_and_case_pages_read_at_tablet_width(live_server, new_page):
    page = new_page(width=820, height=1180)
    sign_in(page, live_server, "carla")
    for path, name in (("/tasks/1", "task-form-tablet"), ("/cases/1", "case-page-tablet")):
        page.goto(f"{live_server}{path}")
        assert page.get_by_role("heading", level=1).is_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at tablet width"
        if path.startswith("/cases"):
            assert page.locator("table.tasks th", has_text="Due").is_visible(), "due times stay on a tablet"
        screenshot(page, name)


def test_the_task_form_can_be_filled_and_sent_with_the_keyboard_alone(live_server, new_page):
    page = new_page()
    sign_in(page, live_server, "carla")
    page.goto(f"{live_server}/cases/1")
    page.get_by_label("Add a note").focus()
    page.keyboard.type("Typed without a mouse.")
    page.keyboard.press("Tab")  # to the Add note button
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"#notes$"))
    assert page.locator(".notes li").first.get_by_text("Typed without a mouse.").is_visible()


def test_a_supervisor_assigns_a_queued_task_from_the_inbox(live_server, new_page):
    sue = new_page()
    sign_in(sue, live_server, "sue")
    sue.goto(f"{live_server}/?view=all&setting=acute_hospital&task=admission_review")
    row = sue.locator("table.tasks tbody tr[data-task-id]").first
    task_id = row.get_attribute("data-task-id")
    row.get_by_role("link", name=re.compile("^Assign")).click()
    sue.wait_for_url(re.compile(rf"/tasks/{task_id}#assign$"))
    sue.get_by_label("Assign to").select_option("carla")
    sue.get_by_role("button", name="Assign", exact=True).click()
    expect(sue.get_by_role("status").first).to_contain_text("now assigned to carla")

    carla = new_page()
    sign_in(carla, live_server, "carla")
    expect(carla.locator(f"tr[data-task-id='{task_id}']")).to_have_count(1)  # in her My tasks
