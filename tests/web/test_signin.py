"""Signing in and out, lock-out, session expiry, the session cookie, where a sign-in may lead, and CSRF."""
from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from werkzeug.security import generate_password_hash

from service import create_app, demo
from service.cli import main
from workflows import accounts, passwords, signin
from workflows.errors import InvalidInput

from .conftest import NOW, PASSWORD, Visitor

WRONG = "That username and password do not match an active account."
LOCKED = "This account is locked after too many wrong passwords, until"


class MovableClock:
    def __init__(self):
        self.current = NOW

    def now(self):
        return self.current

    def advance(self, **delta) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock(services) -> MovableClock:
    services.clock = MovableClock()
    return services.clock


@pytest.fixture
def checks(monkeypatch) -> list[str]:
    """The stored hashes the sign-in checked a password against, in order."""
    checked = []

    def spy(password_hash, password):
        checked.append(password_hash)
        return passwords.password_matches(password_hash, password)
    monkeypatch.setattr(signin, "password_matches", spy)
    return checked


def stored_user(services, username: str):
    with services.uow(read_only=True) as uow:
        return uow.users.get_by_username(username)


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
    def test_a_password_is_stored_as_a_salted_argon2id_hash(self, app):
        services = app.extensions["casework"]
        accounts.add_user(services, username="nina", roles=["case_manager"], password="s3cret-nina")
        stored = stored_user(services, "nina").password_hash
        assert "s3cret-nina" not in stored and stored.startswith("$argon2id$")
        assert PasswordHasher().verify(stored, "s3cret-nina")
        assert not accounts.password_matches(stored, "s3cret-ninA")
        assert accounts.hash_password("s3cret-nina") != stored  # salted

    def test_an_older_scrypt_hash_still_signs_in_once_and_is_replaced_by_argon2(self, services, visitor):
        with services.uow() as uow:
            carla = uow.users.get_by_username("carla")
            carla.password_hash = generate_password_hash(PASSWORD, method="scrypt")  # as stored before argon2
            uow.users.update(carla)
            uow.commit()
        assert WRONG in visitor().sign_in("carla", "not-the-password").get_data(as_text=True)
        assert stored_user(services, "carla").password_hash.startswith("scrypt:")
        assert visitor().sign_in("carla").headers["Location"] == "/inbox"
        rehashed = stored_user(services, "carla").password_hash
        assert rehashed.startswith("$argon2id$") and accounts.password_matches(rehashed, PASSWORD)
        assert visitor().sign_in("carla").headers["Location"] == "/inbox"

    def test_an_unknown_username_costs_the_same_password_check_as_a_known_one(self, visitor, checks):
        visitor().sign_in("nobody", PASSWORD)
        visitor().sign_in("carla", "wrong password")
        assert len(checks) == 2 and checks[0] == passwords.unknown_user_hash() and checks[0] != checks[1]

    def test_a_new_password_replaces_the_old_one(self, app, visitor):
        accounts.set_password(app.extensions["casework"], username="carla", password="a-new-one")
        assert WRONG in visitor().sign_in("carla").get_data(as_text=True)
        assert visitor().sign_in("carla", "a-new-one").status_code == 303

    def test_a_blank_password_is_refused_with_a_reason(self, app):
        with pytest.raises(InvalidInput) as refused:
            accounts.add_user(app.extensions["casework"], username="nina", roles=["case_manager"], password="  ")
        assert refused.value.field_errors == {"password": ["Give a password that is not blank."]}


class TestLockOut:
    @pytest.fixture(autouse=True)
    def three_attempts(self, app):
        app.config["SIGNIN_ATTEMPTS"] = 3  # the default is 5; fewer slow password checks here

    def test_the_third_wrong_password_in_a_row_locks_the_account_and_says_until_when(self, visitor, services):
        for _ in range(2):
            assert WRONG in visitor().sign_in("carla", "wrong password").get_data(as_text=True)
        page = visitor().sign_in("carla", "wrong password").get_data(as_text=True)
        assert f"{LOCKED} Wed 4 Mar 15:15" in page and "ask an administrator to unlock it" in page
        assert stored_user(services, "carla").locked_until == NOW + timedelta(minutes=15)

    def test_while_locked_even_the_right_password_is_refused_without_being_checked(self, visitor, checks):
        for _ in range(3):
            visitor().sign_in("carla", "wrong password")
        checked_so_far = len(checks)
        browser = visitor()
        assert LOCKED in browser.sign_in("carla").get_data(as_text=True)
        assert len(checks) == checked_so_far
        assert browser.get("/inbox").status_code == 303

    def test_the_lock_ends_after_the_lockout_minutes_with_the_attempts_counted_afresh(self, visitor, clock):
        for _ in range(3):
            visitor().sign_in("carla", "wrong password")
        clock.advance(minutes=14, seconds=59)
        assert LOCKED in visitor().sign_in("carla").get_data(as_text=True)
        clock.advance(seconds=1)
        assert WRONG in visitor().sign_in("carla", "wrong password").get_data(as_text=True)
        assert visitor().sign_in("carla").headers["Location"] == "/inbox"

    def test_the_lockout_minutes_come_from_the_configuration(self, app, visitor, clock):
        app.config["LOCKOUT_MINUTES"] = 1
        for _ in range(3):
            visitor().sign_in("carla", "wrong password")
        clock.advance(minutes=1)
        assert visitor().sign_in("carla").headers["Location"] == "/inbox"

    def test_an_administrator_can_unlock_the_account_at_once(self, visitor, services):
        for _ in range(3):
            visitor().sign_in("carla", "wrong password")
        unlocked = accounts.unlock(services, username="carla", actor="ops")
        assert (unlocked.failed_signins, unlocked.locked_until) == (0, None)
        assert visitor().sign_in("carla").headers["Location"] == "/inbox"

    def test_a_good_sign_in_starts_the_count_again(self, visitor, services):
        for _ in range(2):
            visitor().sign_in("carla", "wrong password")
        assert visitor().sign_in("carla").status_code == 303
        assert stored_user(services, "carla").failed_signins == 0
        for _ in range(2):
            assert WRONG in visitor().sign_in("carla", "wrong password").get_data(as_text=True)
        assert visitor().sign_in("carla").status_code == 303

    def test_wrong_passwords_of_one_user_do_not_lock_another(self, visitor):
        for _ in range(3):
            visitor().sign_in("carla", "wrong password")
        assert visitor().sign_in("cole").status_code == 303

    def test_sign_ins_and_lock_outs_are_logged_by_username_never_with_the_password(self, visitor, caplog):
        caplog.set_level(logging.INFO, logger="workflows")
        for _ in range(3):
            visitor().sign_in("carla", "hunter2-secret")
        visitor().sign_in("hunter2-typed-as-name", "x")
        visitor().sign_in("cole")
        text = caplog.text
        assert "Sign-in of carla failed: wrong password (2 in a row)" in text
        assert "carla locked until 2026-03-04T15:15:00+00:00 after 3 wrong passwords in a row" in text
        assert "cole signed in" in text and "unknown username" in text
        assert "hunter2" not in text and PASSWORD not in text


@pytest.mark.postgres
def test_wrong_passwords_sent_at_the_same_moment_are_each_counted(postgres_database_url, tmp_path, monkeypatch,
                                                                  password_hash):
    monkeypatch.chdir(tmp_path)
    app = create_app({"TESTING": True, "DATABASE_URL": postgres_database_url, "SECRET_KEY": "test",
                      "SCHEDULER_ENABLED": False, "CLOCK": MovableClock()})
    services = app.extensions["casework"]
    try:
        accounts.add_user(services, username="carla", roles=["case_manager"])
        with services.uow() as uow:
            carla = uow.users.get_by_username("carla")
            carla.password_hash = password_hash
            uow.users.update(carla)
            uow.commit()
        start = threading.Barrier(5)
        outcomes = []

        def attempt() -> None:
            start.wait()
            outcomes.append(accounts.sign_in(services, username="carla", password="wrong", attempts=5))

        threads = [threading.Thread(target=attempt) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(outcomes) == 5
        assert sorted(outcome.locked_until is not None for outcome in outcomes) == [False] * 4 + [True]
        assert stored_user(services, "carla").locked_until == NOW + timedelta(minutes=15)
    finally:
        services.uow.dispose()


class TestSessions:
    def test_a_session_expires_after_the_idle_minutes_without_a_request(self, visitor, clock):
        browser = visitor("carla")
        clock.advance(minutes=29)
        assert browser.get("/inbox").status_code == 200
        clock.advance(minutes=29)  # 58 minutes since signing in, 29 since the last request
        assert browser.get("/inbox").status_code == 200
        clock.advance(minutes=30, seconds=1)
        response = browser.get("/inbox?view=team")
        assert response.status_code == 303 and response.headers["Location"] == "/signin?next=/inbox?view%3Dteam"
        page = browser.get(response.headers["Location"]).get_data(as_text=True)
        assert "Your session expired after 30 minutes without activity." in page
        assert 'name="next" value="/inbox?view=team"' in page
        assert browser.get("/inbox").status_code == 303  # the session was cleared, not only refused once

    def test_a_session_expires_at_the_maximum_age_however_busy(self, app, visitor, clock):
        app.config["SESSION_IDLE_MINUTES"] = 24 * 60
        browser = visitor("carla")
        clock.advance(hours=11, minutes=59)
        assert browser.get("/inbox").status_code == 200
        clock.advance(minutes=1, seconds=1)
        response = browser.get("/inbox")
        assert response.status_code == 303 and response.headers["Location"] == "/signin?next=/inbox"
        page = browser.get("/signin").get_data(as_text=True)
        assert "Your session expired: a session lasts at most 12 hours." in page

    def test_the_session_limits_come_from_the_configuration(self, app, visitor, clock):
        app.config["SESSION_IDLE_MINUTES"] = 5
        browser = visitor("carla")
        clock.advance(minutes=5, seconds=1)
        assert browser.get("/inbox").status_code == 303
        assert "after 5 minutes without activity" in browser.get("/signin").get_data(as_text=True)

    def test_a_new_password_ends_the_users_open_sessions(self, services, visitor):
        browser, other = visitor("carla"), visitor("cole")
        accounts.set_password(services, username="carla", password="a-new-one")
        assert browser.get("/inbox").status_code == 303
        assert "because your password was changed" in browser.get("/signin").get_data(as_text=True)
        assert other.get("/inbox").status_code == 200
        fresh = visitor()
        assert fresh.sign_in("carla", "a-new-one").status_code == 303 and fresh.get("/inbox").status_code == 200

    def test_deactivating_a_user_ends_their_sessions_with_the_reason(self, services, visitor):
        browser = visitor("carla")
        accounts.update_user(services, username="carla", active=False, actor="ops")
        assert browser.get("/inbox").status_code == 303
        assert "your account is no longer active" in browser.get("/signin").get_data(as_text=True)
        accounts.update_user(services, username="carla", active=True, actor="ops")
        assert browser.get("/inbox").status_code == 303  # reactivating does not revive the old session

    def test_a_session_cookie_naming_only_a_user_is_not_enough(self, app):
        client = app.test_client()
        with client.session_transaction() as session:
            session["username"] = "carla"  # no password fingerprint, no times
        assert client.get("/inbox").status_code == 303


class TestSessionCookie:
    @staticmethod
    def cookie(app, base_url: str = "http://localhost", **headers) -> str:
        response = app.test_client().get("/signin", base_url=base_url, headers=headers)
        return response.headers["Set-Cookie"]

    @staticmethod
    def app_with(database_url, monkeypatch, **environment):
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        return create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test",
                           "SCHEDULER_ENABLED": False})

    def test_over_plain_http_the_cookie_is_not_marked_secure_but_is_http_only_and_lax(self, app):
        cookie = self.cookie(app)
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie

    def test_over_https_the_cookie_is_secure_http_only_and_lax(self, app):
        cookie = self.cookie(app, "https://localhost")
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie

    def test_signing_in_over_https_sets_a_secure_cookie(self, app):
        browser = Visitor(app.test_client())
        browser.get("/signin", base_url="https://localhost")
        response = browser.post("/signin", {"username": "carla", "password": PASSWORD}, base_url="https://localhost",
                                headers={"Referer": "https://localhost/signin"})
        assert response.status_code == 303 and "Secure" in response.headers["Set-Cookie"]

    def test_casework_secure_cookies_marks_it_secure_even_over_http(self, database_url, monkeypatch):
        cookie = self.cookie(self.app_with(database_url, monkeypatch, CASEWORK_SECURE_COOKIES="1"))
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie

    def test_a_forwarded_proto_counts_only_behind_a_configured_proxy(self, database_url, monkeypatch):
        direct = self.app_with(database_url, monkeypatch)
        assert "Secure" not in self.cookie(direct, **{"X-Forwarded-Proto": "https"})
        proxied = self.app_with(database_url, monkeypatch, CASEWORK_PROXY_FIX="1")
        assert "Secure" in self.cookie(proxied, **{"X-Forwarded-Proto": "https"})
        assert "Secure" not in self.cookie(proxied)


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
