"""Signing in and out, the session cookie, where a sign-in may lead, and CSRF on every form."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from werkzeug.security import check_password_hash

from service import create_app, demo
from service.cli import main
from workflows import accounts
from workflows.errors import InvalidInput

from .conftest import PASSWORD

WRONG = "That username and password do not match an active account."


class TestSigningIn:
    def test_a_user_with_the_right_password_is_signed_in_and_sent_to_the_inbox(self, visitor):
        browser = visitor()
        response = browser.sign_in("carla")
        assert response.status_code == 303 and response.headers["Location"] == "/inbox"
        inbox = browser.get("/inbox")
        assert inbox.status_code == 200 and "Carla" in inbox.get_data(as_text=True)

    def test_the_session_cookie_is_http_only_and_same_site_lax(self, visitor):
        response = visitor().sign_in("carla")
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie

    @pytest.mark.parametrize("username, password", [
        ("carla", "wrong password"), ("nobody", PASSWORD), ("carla", ""), ("", ""),
    ], ids=["wrong-password", "unknown-user", "blank-password", "blank-both"])
    def test_wrong_credentials_get_one_clear_message_that_does_not_say_which_part_was_wrong(
            self, visitor, username, password):
        browser = visitor()
        response = browser.sign_in(username, password)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and WRONG in page
        assert browser.get("/inbox").status_code == 303

    def test_the_username_typed_is_kept_but_the_password_is_not(self, visitor):
        page = visitor().sign_in("carla", "not-it-123").get_data(as_text=True)
        assert 'value="carla"' in page and "not-it-123" not in page

    def test_a_deactivated_user_cannot_sign_in_and_loses_an_open_session(self, app, visitor):
        browser = visitor()
        browser.sign_in("carla")
        services = app.extensions["casework"]
        with services.uow() as uow:
            carla = uow.users.get_by_username("carla")
            carla.active = False
            uow.users.update(carla)
            uow.commit()
        assert browser.get("/inbox").status_code == 303
        assert WRONG in visitor().sign_in("carla").get_data(as_text=True)

    def test_a_user_without_a_password_cannot_sign_in(self, app, visitor):
        accounts.add_user(app.extensions["casework"], username="apiclient", roles=["case_manager"])
        assert WRONG in visitor().sign_in("apiclient", "").get_data(as_text=True)


class TestPasswords:
    def test_a_password_is_stored_as_a_salted_scrypt_hash_that_werkzeug_can_check(self, app):
        services = app.extensions["casework"]
        accounts.add_user(services, username="nina", roles=["case_manager"], password="s3cret-nina")
        with services.uow(read_only=True) as uow:
            stored = uow.users.get_by_username("nina").password_hash
        assert "s3cret-nina" not in stored and stored.startswith("scrypt:32768:8:1$")
        assert check_password_hash(stored, "s3cret-nina") and not check_password_hash(stored, "s3cret-ninA")
        assert accounts.hash_password("s3cret-nina") != stored  # salted

    def test_a_new_password_replaces_the_old_one(self, app, visitor):
        accounts.set_password(app.extensions["casework"], username="carla", password="a-new-one")
        assert WRONG in visitor().sign_in("carla").get_data(as_text=True)
        assert visitor().sign_in("carla", "a-new-one").status_code == 303

    def test_a_blank_password_is_refused_with_a_reason(self, app):
        with pytest.raises(InvalidInput) as refused:
            accounts.add_user(app.extensions["casework"], username="nina", roles=["case_manager"], password="  ")
        assert refused.value.field_errors == {"password": ["Give a password that is not blank."]}


class TestSignedOut:
    def test_every_page_sends_a_signed_out_visitor_to_sign_in_and_back(self, visitor):
        response = visitor().get("/inbox?view=team&due=overdue")
        assert response.status_code == 303
        assert response.headers["Location"] == "/signin?next=/inbox?view%3Dteam%26due%3Doverdue"

    def test_after_signing_in_the_visitor_returns_to_the_page_asked_for(self, visitor):
        response = visitor().sign_in("carla", next="/inbox?view=team&due=overdue")
        assert response.headers["Location"] == "/inbox?view=team&due=overdue"

    @pytest.mark.parametrize("target", [
        "https://evil.example/", "//evil.example/", "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
        "javascript:alert(1)", "http:/evil.example", "evil.example",
    ])
    def test_a_next_address_off_this_site_is_refused_for_the_inbox(self, visitor, target):
        response = visitor().sign_in("carla", next=target)
        assert response.status_code == 303 and response.headers["Location"] == "/inbox"

    def test_the_sign_in_page_carries_only_a_safe_next_address(self, visitor):
        page = visitor().get("/signin?next=//evil.example/").get_data(as_text=True)
        assert "evil.example" not in page

    def test_the_stylesheet_is_served_to_the_sign_in_page(self, visitor):
        assert visitor().get("/static/casework.css").status_code == 200


class TestSigningOut:
    def test_signing_out_ends_the_session(self, visitor):
        browser = visitor()
        browser.sign_in("carla")
        browser.get("/inbox")
        response = browser.post("/signout")
        assert response.status_code == 303 and response.headers["Location"] == "/signin"
        assert "You have signed out." in browser.get("/signin").get_data(as_text=True)
        assert browser.get("/inbox").status_code == 303

    def test_signing_out_needs_a_post(self, visitor):
        assert visitor("carla").get("/signout").status_code == 405


class TestCsrf:
    def test_a_sign_in_without_the_form_token_is_refused(self, visitor):
        response = visitor().post("/signin", {"username": "carla", "password": PASSWORD}, with_token=False)
        assert response.status_code == 400
        assert "security token" in response.get_data(as_text=True)

    def test_a_claim_without_the_form_token_is_refused_and_changes_nothing(self, visitor, seed):
        task_id = seed.task(seed.case("Ada Brown", "MRN-1"), "Admission review")
        browser = visitor("carla")
        assert browser.post(f"/tasks/{task_id}/claim", with_token=False).status_code == 400
        assert browser.post(f"/tasks/{task_id}/claim", {"csrf_token": "forged"}, with_token=False).status_code == 400
        assert "Unassigned" in browser.get("/inbox?view=team").get_data(as_text=True)

    def test_a_sign_out_without_the_form_token_is_refused(self, visitor):
        browser = visitor("carla")
        assert browser.post("/signout", with_token=False).status_code == 400
        assert browser.get("/inbox").status_code == 200

    def test_every_form_on_the_inbox_carries_the_token(self, visitor, seed):
        seed.task(seed.case("Ada Brown", "MRN-1"), "Admission review")
        page = visitor("carla").get("/inbox?view=team").get_data(as_text=True)
        forms = page.split('<form method="post"')[1:]
        assert len(forms) == 2  # sign out, claim
        assert all('name="csrf_token"' in form.split("</form>")[0] for form in forms)

    def test_the_token_authenticated_api_needs_no_form_token(self, app, seed):
        task_id = seed.task(seed.case("Ada Brown", "MRN-1"), "Admission review")
        _, token = accounts.add_user(app.extensions["casework"], username="api", roles=["case_manager"])
        response = app.test_client().post(f"/api/v1/tasks/{task_id}/claim", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200 and response.json["assignee"] == "api"


class TestAccountsMadeOutsideThePages:
    def test_user_add_with_a_password_prints_the_token_and_the_user_can_sign_in(
            self, app, visitor, database_url, monkeypatch):
        monkeypatch.setenv("CASEWORK_DATABASE_URL", database_url)
        monkeypatch.setenv("CASEWORK_SECRET_KEY", "test")
        result = CliRunner().invoke(main, ["user", "add", "nina", "--role", "case_manager", "--password", "nina-pw-1"],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert result.output.startswith("Created nina (case_manager). API token (shown once):")
        assert len(result.output.strip().splitlines()[-1]) >= 40
        assert visitor().sign_in("nina", "nina-pw-1").headers["Location"] == "/inbox"

    def test_every_demo_user_signs_in_with_the_demo_password(self, database_url, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test",
                          "SCHEDULER_ENABLED": False})
        services = app.extensions["casework"]
        try:
            assert demo.load_demo(services, tmp_path)  # no diagrams there: users only
            for username, *_ in demo.DEMO_USERS:
                assert accounts.user_for_password(services, username=username, password="demo") is not None, username
        finally:
            services.uow.dispose()
