"""`casework user ...` against a real database: users, passwords, lock-outs and API tokens.

Every command runs through click's runner, which gives it its own standard input (empty unless
a test hands it one), so nothing here waits on the terminal: CI runs with no standard input.
"""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from service import create_app
from service.cli import main
from service.persistence import tables as t
from workflows import accounts

PASSWORD = "a long pass phrase"


@pytest.fixture
def env(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CASEWORK_DATABASE_URL", database_url)
    monkeypatch.setenv("CASEWORK_SECRET_KEY", "test")
    monkeypatch.chdir(tmp_path)
    return database_url


@pytest.fixture
def run_cli(env):
    def run(*args, input: str | None = None):
        return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return run


@pytest.fixture
def app(env):
    app = create_app({"DATABASE_URL": env, "SCHEDULER_ENABLED": False, "SECRET_KEY": "test"})
    yield app
    app.extensions["casework"].uow.dispose()


@pytest.fixture
def services(app):
    return app.extensions["casework"]


def me(app, secret: str):
    return app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})


def refused(result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output


class TestUserAdd:
    def test_the_password_is_read_from_standard_input_and_the_token_printed_once(self, run_cli, app, services):
        added = run_cli("user", "add", "nina", "--role", "case_manager", "--display-name", "Nina Diaz",
                        "--setting", "acute_hospital", "--password-stdin", input=f"{PASSWORD}\n")
        assert added.exit_code == 0, added.output
        lines = added.output.strip().splitlines()
        assert lines[0] == "Created nina (case_manager). API token (shown once):"
        assert lines[-1].startswith("cw_") and PASSWORD not in added.output
        assert accounts.user_for_password(services, username="nina", password=PASSWORD) is not None
        assert me(app, lines[-1]).json["display_name"] == "Nina Diaz"

    def test_an_empty_standard_input_is_refused_and_nobody_is_created(self, run_cli, services):
        refused(run_cli("user", "add", "nina", "--role", "case_manager", "--password-stdin"),
                "Standard input was empty")
        assert [user.username for user in accounts.list_users(services)] == []

    def test_a_blank_password_is_refused_with_the_reason(self, run_cli):
        refused(run_cli("user", "add", "nina", "--role", "case_manager", "--password-stdin", input="   \n"),
                "password: Give a password that is not blank.")

    def test_a_second_user_of_the_same_name_is_refused(self, run_cli):
        run_cli("user", "add", "nina", "--role", "case_manager")
        refused(run_cli("user", "add", "nina", "--role", "supervisor"), "A user named 'nina' already exists.")

    def test_a_missing_role_is_a_usage_error_that_exits_1(self, run_cli):
        refused(run_cli("user", "add", "nina"), "Missing option '--role'")


class TestPasswordsAndLockOut:
    def test_a_new_password_from_standard_input_replaces_the_old_one(self, run_cli, services):
        run_cli("user", "add", "nina", "--role", "case_manager", "--password-stdin", input="old pass phrase\n")
        changed = run_cli("user", "password", "nina", "--password-stdin", input=f"{PASSWORD}\r\n")
        assert changed.exit_code == 0 and "nina has a new password" in changed.output
        assert accounts.user_for_password(services, username="nina", password=PASSWORD) is not None
        assert accounts.user_for_password(services, username="nina", password="old pass phrase") is None

    def test_a_password_is_never_taken_from_the_command_line(self, run_cli):
        run_cli("user", "add", "nina", "--role", "case_manager")
        refused(run_cli("user", "password", "nina"), "Give the new password on standard input with --password-stdin")
        refused(run_cli("user", "password", "nina", "--password-stdin"), "Standard input was empty")
        refused(run_cli("user", "password", "ghost", "--password-stdin", input=f"{PASSWORD}\n"),
                "There is no user named 'ghost'.")

    def test_unlock_lifts_a_lock_out(self, run_cli, services):
        user, _ = accounts.add_user(services, username="nina", roles=["case_manager"])
        soon = datetime.now(timezone.utc) + timedelta(minutes=15)
        with services.uow() as uow:
            uow.users.record_failed_signin(user.id, now=datetime.now(timezone.utc), attempts=1, lock_until=soon)
            uow.commit()
        assert "locked until" in run_cli("user", "list").output
        unlocked = run_cli("user", "unlock", "nina")
        assert unlocked.exit_code == 0 and unlocked.output.strip() == "nina can sign in again."
        with services.uow(read_only=True) as uow:
            assert uow.users.get(user.id).locked_until is None
        refused(run_cli("user", "unlock", "ghost"), "There is no user named 'ghost'.")


class TestActivity:
    def test_deactivate_stops_the_users_tokens_and_activate_restores_them(self, run_cli, app, services):
        _, secret = accounts.add_user(services, username="nina", roles=["case_manager"])
        deactivated = run_cli("user", "deactivate", "nina")
        assert deactivated.exit_code == 0 and "nina is deactivated" in deactivated.output
        assert me(app, secret).status_code == 401
        assert "nina\tnina\tcase_manager\t*\tdeactivated" in run_cli("user", "list").output
        assert run_cli("user", "activate", "nina").exit_code == 0
        assert me(app, secret).status_code == 200
        refused(run_cli("user", "deactivate", "ghost"), "There is no user named 'ghost'.")

    def test_list_shows_every_user_with_roles_settings_and_state(self, run_cli, services):
        accounts.add_user(services, username="nina", roles=["case_manager", "supervisor"], display_name="Nina",
                          settings=["acute_hospital"])
        accounts.add_user(services, username="ari", roles=["attending"])
        listed = run_cli("user", "list")
        assert listed.output.splitlines() == ["ari\tari\tattending\t*\tactive",
                                              "nina\tNina\tcase_manager,supervisor\tacute_hospital\tactive"]


class TestTokens:
    @pytest.fixture
    def nina(self, services) -> str:
        accounts.add_user(services, username="nina", roles=["case_manager", "supervisor"])
        return "nina"

    def test_a_token_scoped_to_a_role_and_expiring_is_printed_once_and_works(self, run_cli, app, nina):
        issued = run_cli("user", "token", "add", nina, "--name", "payer feed", "--role", "case_manager",
                         "--expires-days", "30")
        assert issued.exit_code == 0, issued.output
        assert "'payer feed' for nina (roles: case_manager; expires " in issued.output
        secret = issued.output.strip().splitlines()[-1]
        assert secret.startswith("cw_") and me(app, secret).json["roles"] == ["case_manager"]
        listed = run_cli("user", "token", "list", nina).output
        assert "payer feed\troles: case_manager\tcreated" in listed and "active, expires" in listed
        assert "default\tall of nina's roles" in listed and secret not in listed

    def test_revoking_a_token_refuses_it_at_once(self, run_cli, app, services, nina):
        token, secret = accounts.issue_token(services, username=nina, name="feed", actor="ops")
        revoked = run_cli("user", "token", "revoke", str(token.id))
        assert revoked.exit_code == 0 and f"Revoked API token {token.id} 'feed'" in revoked.output
        assert me(app, secret).status_code == 401
        assert "revoked" in run_cli("user", "token", "list", nina).output
        refused(run_cli("user", "token", "revoke", str(token.id)), "was already revoked by cli:")

    @pytest.mark.parametrize("args, message", [
        (["--name", "feed", "--role", "designer"], "nina does not hold designer"),
        (["--name", "feed", "--role", "wizard"], "nina does not hold wizard"),
        (["--name", "  "], "Give the token a name of 1-100 characters"),
        (["--name", "default"], "nina already has a token named 'default'"),
        (["--name", "feed", "--expires-days", "0"], "--expires-days takes a whole number of days from 1 to 3650"),
        (["--name", "feed", "--expires-days", "soon"], "--expires-days takes a whole number of days from 1 to 3650"),
        (["--role", "case_manager"], "Missing option '--name'"),
    ], ids=["role-not-held", "unknown-role", "blank-name", "name-taken", "zero-days", "days-not-a-number",
            "no-name"])
    def test_bad_token_requests_are_refused_with_the_reason_and_issue_nothing(self, run_cli, app, nina, args,
                                                                              message):
        refused(run_cli("user", "token", "add", nina, *args), message)
        with app.extensions["casework"].uow.engine.connect() as connection:
            assert connection.execute(select(t.api_token.c.name)).scalars().all() == ["default"]

    def test_tokens_of_or_for_an_unknown_user_or_id_are_refused(self, run_cli):
        refused(run_cli("user", "token", "add", "ghost", "--name", "feed"), "There is no user named 'ghost'.")
        refused(run_cli("user", "token", "list", "ghost"), "There is no user named 'ghost'.")
        refused(run_cli("user", "token", "revoke", "999"), "There is no API token 999.")
        refused(run_cli("user", "token", "revoke", "abc"), "TOKEN_ID is the number `casework user token list` shows")


def test_with_standard_input_closed_the_command_says_so_instead_of_failing(env):
    """The real command in a process whose standard input is closed, as under some CI runners."""
    command = [sys.executable, "-c", "from service.cli import main; main()",
               "user", "add", "nina", "--role", "case_manager", "--password-stdin"]
    done = subprocess.run(command, preexec_fn=lambda: os.close(0), capture_output=True, text=True, timeout=120,
                          cwd=os.getcwd(), env=os.environ | {"PYTHONPATH": os.path.dirname(os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__))))})
    assert done.returncode == 1, done.stderr
    assert "No standard input to read the password from" in done.stderr and "Traceback" not in done.stderr
