"""The admin pages: users, their roles and settings, passwords, lock-outs and API tokens, on both databases."""
from __future__ import annotations

import itertools
import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.persistence import tables as t
from workflows import accounts

from .conftest import NOW, PASSWORD

NEW_PASSWORD = "a long new pass phrase"
ONLY_ADMINS = "Only administrators can see and change users"
_NAMES = itertools.count(1)
_PARAMETER = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")


@pytest.fixture
def ada(services, password_hash) -> str:
    """ada, the administrator, with the shared test password."""
    accounts.add_user(services, username="ada", roles=["admin"], display_name="Ada")
    with services.uow() as uow:
        user = uow.users.get_by_username("ada")
        user.password_hash = password_hash
        uow.users.update(user)
        uow.commit()
    return "ada"


@pytest.fixture
def admin(visitor, ada, seed):
    seed.process("acute_stay", "acute_hospital")  # a deployed setting to choose
    return visitor(ada)


def snapshot(app) -> dict[str, list[tuple]]:
    """Every row of the tables the admin pages change, to show that a refused request changed nothing."""
    with app.extensions["casework"].uow.engine.connect() as connection:
        return {table.name: sorted(tuple(row) for row in connection.execute(select(table)))
                for table in (t.app_user, t.user_role, t.user_setting, t.api_token)}


def user(services, username: str):
    return next(u for u in accounts.list_users(services) if u.username == username)


def issue(services, username: str, roles: list[str] | None = None) -> tuple[object, str]:
    return accounts.issue_token(services, username=username, name=f"feed {next(_NAMES)}", roles=roles,
                                actor=user(services, "ada"))


def api(app, secret: str, path: str = "/api/v1/me"):
    return app.test_client().get(path, headers={"Authorization": f"Bearer {secret}"})


def secret_of(response) -> str:
    return re.search(r'value="([^"]+)"[^>]*data-token-secret', response.get_data(as_text=True)).group(1)


def admin_routes(app, services) -> list[tuple[str, str]]:
    """(method, path) of every admin page and form, with carla and her token as the example."""
    token, _ = issue(services, "carla")
    examples = {"username": "carla", "token_id": str(token.id)}
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("web.admin_"):
            continue
        options = [""]
        for converter, arguments, name in _PARAMETER.findall(rule.rule):
            if converter == "any":
                options = [a.strip().strip("'\"") for a in arguments.split(",")]
        for option in options:
            path = _PARAMETER.sub(lambda m: option if m.group(1) == "any" else examples[m.group(3)], rule.rule)
            routes += [(method, path) for method in sorted(rule.methods & {"GET", "POST"})]
    return routes


class TestTheUserList:
    def test_an_admin_sees_each_user_with_roles_settings_lock_and_live_tokens(self, admin, services):
        live = len(accounts.tokens_of(services, username="carla"))  # add_user gave her a 'default' one
        issue(services, "carla")
        revoked, _ = issue(services, "carla")
        accounts.revoke_token(services, token_id=revoked.id, actor=user(services, "ada"))
        page = admin.get("/admin/users").get_data(as_text=True)
        row = re.search(r'<tr data-username="carla">.*?</tr>', page, re.S).group(0)
        assert "Carla" in row and "case_manager" in row and "*" in row and "Not locked" in row
        assert re.search(rf"data-live-tokens>{live + 1}<", row)
        assert 'href="/admin/users"' in page  # the navigation link

    def test_only_admins_see_the_link_to_the_user_pages(self, visitor, ada):
        assert 'href="/admin/users"' not in visitor("sue").get("/inbox").get_data(as_text=True)


class TestAddingAUser:
    def test_a_user_added_with_roles_settings_and_a_password_can_sign_in(self, admin, services, visitor):
        response = admin.post("/admin/users", {"username": "nina", "display_name": "Nina Ortiz", "password": NEW_PASSWORD,
                                               "roles": ["case_manager", "social_worker"], "settings": ["acute_hospital"]})
        assert response.status_code == 303 and response.headers["Location"] == "/admin/users/nina"
        nina = user(services, "nina")
        assert (nina.roles, nina.settings, nina.display_name) == (["case_manager", "social_worker"], ["acute_hospital"],
                                                                  "Nina Ortiz")
        assert visitor().sign_in("nina", NEW_PASSWORD).status_code == 303

    @pytest.mark.parametrize("change, field", [
        ({"username": "Nina Ortiz"}, "username"),
        ({"roles": []}, "roles"),
        ({"roles": ["case_manager", "wizard"]}, "roles"),
        ({"settings": []}, "settings"),
        ({"settings": ["moon_base"]}, "settings"),
        ({"password": "x" * 1025}, "password"),
    ], ids=["bad-username", "no-role", "unknown-role", "no-setting", "setting-not-offered", "password-too-long"])
    def test_bad_input_is_refused_naming_the_field_and_changes_nothing(self, app, admin, change, field):
        before = snapshot(app)
        form = {"username": "nina", "password": "s3cret-typed", "roles": ["case_manager"], "settings": ["*"], **change}
        response = admin.post("/admin/users", form)
        page = response.get_data(as_text=True)
        assert response.status_code == 400 and "Nothing was changed." in page
        assert f'id="new-{field}-error"' in page
        assert "s3cret-typed" not in page  # a typed password is never sent back
        assert snapshot(app) == before

    def test_a_username_already_taken_is_refused_as_a_conflict(self, app, admin):
        before = snapshot(app)
        response = admin.post("/admin/users", {"username": "carla", "roles": ["case_manager"], "settings": ["*"]})
        assert response.status_code == 409 and "already exists" in response.get_data(as_text=True)
        assert snapshot(app) == before


class TestEditingAUser:
    def test_roles_settings_and_name_are_saved(self, admin, services):
        response = admin.post("/admin/users/carla", {"display_name": "Carla Diaz", "roles": ["case_manager", "supervisor"],
                                                     "settings": ["acute_hospital"]})
        assert response.status_code == 303 and response.headers["Location"] == "/admin/users/carla"
        carla = user(services, "carla")
        assert (carla.roles, carla.settings, carla.display_name) == (["case_manager", "supervisor"], ["acute_hospital"],
                                                                     "Carla Diaz")

    def test_an_unknown_role_is_refused_and_nothing_changes(self, app, admin):
        before = snapshot(app)
        response = admin.post("/admin/users/carla", {"display_name": "Carla", "roles": ["root"], "settings": ["*"]})
        assert response.status_code == 400 and 'id="roles-error"' in response.get_data(as_text=True)
        assert snapshot(app) == before

    def test_an_admin_cannot_remove_their_own_admin_role(self, app, admin):
        before = snapshot(app)
        response = admin.post("/admin/users/ada", {"display_name": "Ada", "roles": ["supervisor"], "settings": ["*"]})
        assert response.status_code == 400 and "your own admin role" in response.get_data(as_text=True)
        assert snapshot(app) == before

    def test_an_unknown_user_is_not_found(self, admin):
        assert admin.get("/admin/users/nobody").status_code == 404


class TestDeactivating:
    def test_a_deactivated_user_is_signed_out_at_once_and_their_token_refused_until_reactivated(
            self, app, admin, services, visitor):
        carla = visitor("carla")
        _, secret = issue(services, "carla")
        assert carla.get("/inbox").status_code == 200 and api(app, secret).status_code == 200
        assert admin.post("/admin/users/carla/deactivate").status_code == 303
        assert not user(services, "carla").active
        assert carla.get("/inbox").status_code == 303 and api(app, secret).status_code == 401
        assert admin.post("/admin/users/carla/reactivate").status_code == 303
        assert api(app, secret).status_code == 200

    def test_an_admin_cannot_deactivate_themselves(self, app, admin):
        before = snapshot(app)
        response = admin.post("/admin/users/ada/deactivate")
        assert response.status_code == 400 and "cannot deactivate your own account" in response.get_data(as_text=True)
        assert snapshot(app) == before and admin.get("/admin/users").status_code == 200


class TestSignInLock:
    def test_unlocking_a_locked_account_lets_the_user_sign_in_again(self, app, admin, services, visitor):
        for _ in range(app.config["SIGNIN_ATTEMPTS"]):
            visitor().sign_in("carla", "not her password")
        assert "locked until" in admin.get("/admin/users/carla").get_data(as_text=True)
        assert visitor().sign_in("carla").status_code == 200  # refused while locked, the right password too
        assert admin.post("/admin/users/carla/unlock").status_code == 303
        carla = user(services, "carla")
        assert (carla.failed_signins, carla.locked_until) == (0, None)
        assert visitor().sign_in("carla").status_code == 303


class TestPasswords:
    def test_a_password_set_by_an_admin_replaces_the_old_one(self, admin, visitor):
        assert admin.post("/admin/users/carla/password", {"password": NEW_PASSWORD}).status_code == 303
        assert visitor().sign_in("carla", NEW_PASSWORD).status_code == 303
        assert visitor().sign_in("carla", PASSWORD).status_code == 200  # refused

    def test_a_blank_password_is_refused_naming_the_field(self, app, admin):
        before = snapshot(app)
        response = admin.post("/admin/users/carla/password", {"password": "   "})
        assert response.status_code == 400 and 'id="new-password-error"' in response.get_data(as_text=True)
        assert snapshot(app) == before


class TestApiTokens:
    def test_a_token_acts_with_only_the_roles_it_was_issued_with(self, app, admin):
        response = admin.post("/admin/users/sue/tokens", {"name": "ward feed", "roles": ["case_manager"]})
        assert response.status_code == 201
        secret = secret_of(response)
        assert api(app, secret).json["roles"] == ["case_manager"]
        assert api(app, secret, "/api/v1/stuck-cases").status_code == 403  # sue's supervisor role stays out of reach
        supervising = secret_of(admin.post("/admin/users/sue/tokens", {"name": "manager", "roles": ["supervisor"]}))
        assert api(app, supervising, "/api/v1/stuck-cases").status_code == 200

    def test_the_secret_is_on_the_issuing_response_only(self, app, admin, caplog):
        caplog.set_level(logging.DEBUG)
        response = admin.post("/admin/users/sue/tokens", {"name": "ward feed", "roles": ["case_manager"]})
        secret = secret_of(response)
        assert "Location" not in response.headers and response.headers["Cache-Control"] == "no-store"
        assert secret not in admin.get("/admin/users/sue").get_data(as_text=True)
        assert secret not in admin.get("/admin/users").get_data(as_text=True)
        with admin.client.session_transaction() as session:
            assert secret not in repr(dict(session))
        assert secret not in repr(snapshot(app)) and secret not in caplog.text

    def test_a_revoked_token_is_refused_at_once(self, app, admin, services):
        token, secret = issue(services, "carla")
        assert api(app, secret).status_code == 200
        response = admin.post(f"/admin/users/carla/tokens/{token.id}/revoke")
        assert response.status_code == 303 and api(app, secret).status_code == 401
        assert "Revoked" in admin.get("/admin/users/carla").get_data(as_text=True)

    def test_revoking_a_revoked_token_again_is_refused_as_a_conflict(self, app, admin, services):
        token, _ = issue(services, "carla")
        admin.post(f"/admin/users/carla/tokens/{token.id}/revoke")
        before = snapshot(app)
        response = admin.post(f"/admin/users/carla/tokens/{token.id}/revoke")
        assert response.status_code == 409 and "already revoked" in response.get_data(as_text=True)
        assert snapshot(app) == before

    def test_a_token_is_revoked_only_through_its_own_users_page(self, app, admin, services):
        token, secret = issue(services, "carla")
        assert admin.post(f"/admin/users/sue/tokens/{token.id}/revoke").status_code == 404
        assert api(app, secret).status_code == 200

    def test_a_token_expires_at_the_end_of_its_last_day(self, app, admin, services):
        response = admin.post("/admin/users/carla/tokens", {"name": "trial", "roles": ["case_manager"],
                                                             "expires_on": NOW.date().isoformat()})
        secret = secret_of(response)
        assert api(app, secret).status_code == 200
        services.clock.now = lambda: NOW + timedelta(days=2)
        assert api(app, secret).status_code == 401

    @pytest.mark.parametrize("change, field", [
        ({"name": ""}, "token-name"),
        ({"roles": []}, "token-roles"),
        ({"roles": ["supervisor"]}, "token-roles"),
        ({"expires_on": "next tuesday"}, "token-expires"),
        ({"expires_on": "2020-01-01"}, "token-expires"),
    ], ids=["blank-name", "no-role", "role-the-user-lacks", "not-a-date", "in-the-past"])
    def test_bad_input_is_refused_naming_the_field_and_issues_nothing(self, app, admin, change, field):
        before = snapshot(app)
        response = admin.post("/admin/users/carla/tokens", {"name": "feed", "roles": ["case_manager"], **change})
        assert response.status_code == 400 and f'id="{field}-error"' in response.get_data(as_text=True)
        assert snapshot(app) == before


class TestOnlyAdmins:
    @pytest.mark.parametrize("who", ["carla", "sue"], ids=["case-manager", "supervisor"])
    def test_everyone_else_gets_403_on_every_admin_page_and_form_and_nothing_changes(self, app, services, visitor,
                                                                                      ada, who):
        routes = admin_routes(app, services)
        assert len(routes) >= 9, routes
        someone = visitor(who)
        before = snapshot(app)
        answers = {(method, path): (someone.get(path) if method == "GET" else someone.post(path, {
            "password": NEW_PASSWORD, "name": "x", "roles": ["admin"], "settings": ["*"], "username": "mallory"}))
            for method, path in routes}
        assert {key: response.status_code for key, response in answers.items()} == {key: 403 for key in answers}
        assert all(ONLY_ADMINS in response.get_data(as_text=True) for response in answers.values())
        assert snapshot(app) == before

    def test_anonymous_visitors_are_sent_to_sign_in(self, app, visitor):
        response = visitor().get("/admin/users")
        assert response.status_code == 303 and response.headers["Location"].startswith("/signin")

    @pytest.mark.parametrize("forgery", ["no token", "made-up token"])
    def test_every_admin_form_refuses_a_forged_request(self, app, services, admin, forgery):
        routes = admin_routes(app, services)
        before = snapshot(app)
        for method, path in routes:
            if method != "POST":
                continue
            data = {"password": NEW_PASSWORD, "name": "x", "roles": ["admin"], "settings": ["*"], "username": "mallory"}
            if forgery == "made-up token":
                data["csrf_token"] = "IjAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ1Njc4OSI.forged.signature"
            response = admin.client.post(path, data=data)
            assert (response.status_code, "security token" in response.get_data(as_text=True)) == (400, True), path
        assert snapshot(app) == before
