"""API tokens through HTTP: scoped to some of a user's roles, expiring, revocable, and never stored in clear."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select

from service.persistence import tables as t
from workflows import accounts
from workflows.errors import Forbidden, InvalidInput, NotFound
from workflows.model import User

from tests.e2e.conftest import Api

T0 = datetime(2026, 3, 4, 15, 0, tzinfo=timezone.utc)
SUPERVISORS_ONLY = "/kpis"  # a read only supervisors may make


class MovableClock:
    def __init__(self):
        self.current = T0

    def now(self) -> datetime:
        return self.current


@pytest.fixture
def services(app):
    return app.extensions["casework"]


@pytest.fixture
def clock(services) -> MovableClock:
    services.clock = MovableClock()
    return services.clock


@pytest.fixture
def api(app):
    def call(secret: str) -> Api:
        return Api(app.test_client(), secret)
    return call


def issue(services, username: str = "sue", **options) -> str:
    _, secret = accounts.issue_token(services, username=username, name=options.pop("name", "feed"), actor="ops",
                                     **options)
    return secret


def all_rows(app) -> dict[str, list[tuple]]:
    with app.extensions["casework"].uow.engine.connect() as connection:
        return {table.name: [tuple(row) for row in connection.execute(select(table))]
                for table in (t.app_user, t.api_token)}


class TestScopes:
    def test_a_token_scoped_to_one_role_acts_with_only_that_role(self, services, users, api):
        scoped = api(issue(services, roles=["case_manager"]))
        assert scoped.get("/me").json["roles"] == ["case_manager"]
        assert scoped.get(SUPERVISORS_ONLY).status_code == 403
        assert api(users["sue"]).get(SUPERVISORS_ONLY).status_code == 200  # her default token: all her roles

    def test_a_role_taken_from_the_user_no_longer_applies_through_a_token_scoped_to_it(self, services, users, api):
        scoped = api(issue(services, roles=["supervisor"]))
        assert scoped.get(SUPERVISORS_ONLY).status_code == 200
        accounts.update_user(services, username="sue", roles=["case_manager"], actor="ops")
        assert scoped.get(SUPERVISORS_ONLY).status_code == 403
        assert scoped.get("/me").json["roles"] == []
        assert api(users["sue"]).get("/me").json["roles"] == ["case_manager"]

    def test_a_token_cannot_be_scoped_beyond_its_users_roles(self, app, services, users):
        before = all_rows(app)
        with pytest.raises(InvalidInput) as refused:
            issue(services, username="carla", roles=["case_manager", "supervisor"])
        assert refused.value.field_errors == {"roles": ["carla does not hold supervisor; choose from case_manager."]}
        with pytest.raises(InvalidInput) as refused:
            issue(services, username="carla", roles=[])
        assert "roles" in refused.value.field_errors
        assert all_rows(app) == before


class TestEndingTokens:
    def test_a_revoked_token_is_refused_at_the_next_request_and_the_users_others_still_work(
            self, services, users, api):
        secret = issue(services)
        feed = api(secret)
        assert feed.get("/me").status_code == 200
        token = next(token for token in accounts.tokens_of(services, username="sue") if token.name == "feed")
        revoked = accounts.revoke_token(services, token_id=token.id, actor="ops")
        assert (revoked.revoked, revoked.revoked_by) == (True, "ops")
        response = feed.get("/me")
        assert response.status_code == 401 and "Send a valid API token" in response.get_data(as_text=True)
        assert api(users["sue"]).get("/me").status_code == 200

    def test_an_expired_token_is_refused(self, services, users, api, clock):
        feed = api(issue(services, expires_at=T0 + timedelta(hours=1)))
        clock.current = T0 + timedelta(minutes=59)
        assert feed.get("/me").status_code == 200
        clock.current = T0 + timedelta(hours=1)
        assert feed.get("/me").status_code == 401

    def test_a_token_cannot_be_issued_already_expired(self, services, users, clock):
        with pytest.raises(InvalidInput) as refused:
            issue(services, expires_at=T0 - timedelta(seconds=1))
        assert refused.value.field_errors == {"expires_at": ["Give an expiry time in the future, with a time zone."]}

    def test_every_token_of_a_deactivated_user_is_refused_until_reactivated(self, services, users, api):
        feed, default = api(issue(services)), api(users["sue"])
        accounts.update_user(services, username="sue", active=False, actor="ops")
        assert feed.get("/me").status_code == 401 and default.get("/me").status_code == 401
        accounts.update_user(services, username="sue", active=True, actor="ops")
        assert feed.get("/me").status_code == 200


class TestManagingTokens:
    def test_a_user_holds_several_named_tokens_listed_oldest_first(self, services, users):
        issue(services, name="payer feed", roles=["case_manager"])
        issue(services, name="bed board", expires_at=datetime.now(timezone.utc) + timedelta(days=30))
        tokens = accounts.tokens_of(services, username="sue")
        assert [(token.name, token.roles, token.created_by) for token in tokens] == [
            ("default", None, "casework"), ("payer feed", ["case_manager"], "ops"), ("bed board", None, "ops")]

    def test_secrets_are_stored_only_as_their_hash(self, app, services, users):
        secret = issue(services)
        assert secret.startswith("cw_") and len(secret) >= 40
        stored = all_rows(app)
        every_value = [str(value) for rows in stored.values() for row in rows for value in row]
        assert not [value for value in every_value if secret in value or users["sue"] in value]
        hashes = {row.token_hash for row in _tokens(app)}
        assert hashlib.sha256(secret.encode()).hexdigest() in hashes
        with app.extensions["casework"].uow.engine.connect() as connection:
            assert "token_hash" not in {column["name"] for column in inspect(connection).get_columns("app_user")}

    def test_only_an_administrator_may_issue_or_revoke_a_token(self, app, services, users):
        before = all_rows(app)
        with pytest.raises(Forbidden):
            accounts.issue_token(services, username="sue", name="feed", actor=User("carla", ["case_manager"]))
        token = accounts.tokens_of(services, username="sue")[0]
        with pytest.raises(Forbidden):
            accounts.revoke_token(services, token_id=token.id, actor=User("carla", ["case_manager"]))
        assert all_rows(app) == before
        admin = User("ada", ["admin"])
        assert accounts.revoke_token(services, token_id=token.id, actor=admin).revoked_by == "ada"

    def test_unknown_users_and_tokens_are_named(self, services, users):
        with pytest.raises(NotFound, match="There is no user named 'ghost'."):
            issue(services, username="ghost")
        with pytest.raises(NotFound, match="There is no API token 999."):
            accounts.revoke_token(services, token_id=999, actor="ops")


def _tokens(app):
    with app.extensions["casework"].uow.engine.connect() as connection:
        return connection.execute(select(t.api_token)).all()
