"""A case manager's morning in the inbox, in headless chromium: sign in, filter, claim; a colleague's view."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import screenshot


def sign_in(page, base_url: str, username: str, password: str = "demo") -> None:
    page.goto(f"{base_url}/")
    assert "/signin" in page.url, "signed out, every page leads to the sign-in form"
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/(inbox)?(\?.*)?$"))


def count_on_tab(page, label: str) -> int:
    return int(page.get_by_role("navigation", name="Inbox views").get_by_role("link", name=re.compile(label))
               .locator(".count").inner_text())


def test_a_wrong_password_is_refused_with_a_clear_message(live_server, new_page):
    page = new_page()
    page.goto(f"{live_server}/signin")
    page.get_by_label("Username").fill("carla")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert "/signin" in page.url


def test_a_case_manager_filters_her_teams_queue_claims_a_task_and_a_colleague_no_longer_sees_it(live_server, new_page):
    carla = new_page()
    sign_in(carla, live_server, "carla")
    mine_before = count_on_tab(carla, "My tasks")

    carla.get_by_role("link", name=re.compile("My team's queue")).click()
    carla.get_by_label("Setting").select_option("acute_hospital")
    carla.get_by_role("button", name="Apply").click()
    carla.wait_for_url(re.compile(r"setting=acute_hospital"))
    rows = carla.locator("table.tasks tbody tr[data-task-id]")
    assert rows.count() > 0, "the demo data has acute-hospital tasks for case managers"
    settings = {text.strip() for text in carla.locator("table.tasks tbody tr[data-task-id] td:nth-child(3)").all_inner_texts()}
    assert settings == {"Acute hospital"}, settings
    screenshot(carla, "inbox-team-queue-acute")

    first = rows.first
    task_id = first.get_attribute("data-task-id")
    first.get_by_role("button", name=re.compile("^Claim")).click()
    expect(carla.get_by_role("status").first).to_be_visible()  # the confirmation
    assert carla.locator(f"tr[data-task-id='{task_id}']").count() == 0, "the claimed task leaves the team queue"
    assert count_on_tab(carla, "My tasks") == mine_before + 1

    carla.get_by_role("link", name=re.compile("My tasks")).click()
    assert carla.locator(f"tr[data-task-id='{task_id}']").count() == 1
    screenshot(carla, "inbox-my-tasks")

    sue = new_page()  # a supervisor who also holds the case_manager role
    sign_in(sue, live_server, "sue")
    sue.goto(f"{live_server}/?view=team")
    assert sue.locator("table.tasks tbody tr[data-task-id]").count() > 0
    assert sue.locator(f"tr[data-task-id='{task_id}']").count() == 0, "a colleague no longer sees it in the queue"
    sue.goto(f"{live_server}/?view=all")
    claimed_row = sue.locator(f"tr[data-task-id='{task_id}']")
    assert claimed_row.count() == 1 and "carla" in claimed_row.inner_text(), "the supervisor sees who has it"


def test_the_inbox_reads_at_tablet_width(live_server, new_page):
    page = new_page(width=820, height=1180)
    sign_in(page, live_server, "carla")
    page.goto(f"{live_server}/?view=team")
    assert page.locator("table.tasks").is_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at tablet width"
    screenshot(page, "inbox-tablet")
