"""An administrator in headless chromium: adds a user, issues them an API token, uses it, revokes it."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.test_inbox_in_the_browser import sign_in


def test_an_admin_adds_a_user_issues_a_token_and_revokes_it(live_server, new_page):
    admin = new_page()
    refusals = []  # what the Content-Security-Policy blocked, if anything
    admin.on("console", lambda message: refusals.append(message.text) if "Content Security Policy" in message.text else None)
    sign_in(admin, live_server, "admin")
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    expect(admin.get_by_role("heading", name="Users", exact=True)).to_be_visible()

    adding = admin.locator("#add-user")
    adding.get_by_label("Username").fill("nina")
    adding.get_by_label("Display name").fill("Nina Ortiz")
    adding.get_by_role("group", name="Roles").get_by_label("case_manager", exact=True).check()
    adding.get_by_role("group", name="Settings").get_by_label("acute_hospital", exact=True).check()
    adding.get_by_label("Initial password").fill("nina's first pass phrase")
    adding.get_by_role("button", name="Add the user").click()
    admin.wait_for_url(re.compile(r"/admin/users/nina$"))
    expect(admin.get_by_role("heading", level=1)).to_contain_text("Nina Ortiz")

    issuing = admin.locator("#tokens")
    issuing.get_by_label("Name", exact=True).fill("ward feed")
    issuing.get_by_role("group", name="Roles the token acts with").get_by_label("case_manager", exact=True).check()
    issuing.get_by_role("button", name="Issue the token").click()
    expect(admin.get_by_role("heading", level=1)).to_contain_text("ward feed")
    secret = admin.get_by_role("textbox", name="Secret").input_value()
    assert len(secret) >= 32
    screenshot(admin, "admin-token-issued")
    me = admin.request.get(f"{live_server}/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status == 200 and me.json()["username"] == "nina" and me.json()["roles"] == ["case_manager"]

    admin.get_by_role("link", name=re.compile("back to nina")).click()
    row = admin.locator("tr[data-token-id]", has_text="ward feed")
    expect(row.locator("[data-token-state]")).to_have_text("Live")
    assert secret not in admin.content()
    row.get_by_role("button", name="Revoke the token ward feed").click()
    expect(admin.get_by_role("status")).to_contain_text("revoked")
    expect(admin.locator("tr[data-token-id]", has_text="ward feed").locator("[data-token-state]")).to_contain_text("Revoked")
    screenshot(admin, "admin-user")
    refused = admin.request.get(f"{live_server}/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status == 401
    assert refusals == []
