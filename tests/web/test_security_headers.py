"""Every kind of response carries the security headers; only static assets may be cached."""
from __future__ import annotations

import pytest

from tests.web.test_designer import deploy_acute
from workflows import accounts, handlers

POLICY = ("default-src 'self'", "script-src 'self'", "style-src 'self'", "style-src-attr 'none'", "object-src 'none'",
          "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'", "img-src 'self' data:",
          "connect-src 'self'")


def policy_of(response) -> set[str]:
    return {directive.strip() for directive in response.headers.get("Content-Security-Policy", "").split(";")}


def assert_protected(response, *, cacheable: bool = False) -> None:
    assert set(POLICY) - {"style-src-attr 'none'"} <= policy_of(response), response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    if cacheable:
        assert "no-store" not in response.headers.get("Cache-Control", "")
    else:
        assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
def token(services) -> str:
    return accounts.add_user(services, username="ivy", roles=["case_manager", "admin"])[1]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


class TestPages:
    def test_a_page_with_case_data_is_protected_and_never_stored(self, visitor, seed):
        case_id = seed.case("Zebulon Quackenbush", "MRN-987654")
        seed.task(case_id, "Admission review", assignee="carla")
        response = visitor("carla").get("/inbox")
        assert response.status_code == 200 and "Zebulon Quackenbush" in response.get_data(as_text=True)
        assert_protected(response)
        assert set(POLICY) <= policy_of(response), "no style attribute applies on the pages"

    def test_the_sign_in_page(self, app):
        response = app.test_client().get("/signin")
        assert response.status_code == 200
        assert_protected(response)

    def test_a_redirect(self, app):
        response = app.test_client().get("/inbox")
        assert response.status_code in (302, 303) and "/signin" in response.headers["Location"]
        assert_protected(response)

    def test_a_csv_export(self, visitor):
        response = visitor("sue").get("/stuck.csv")
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert_protected(response)

    def test_only_the_modeler_allows_style_attributes(self, services, visitor):
        deploy_acute(services)
        accounts.add_user(services, username="dana", roles=["designer"])
        response = visitor("dana").get("/designer/sets/acute_hospital")
        assert response.status_code == 200
        assert_protected(response)
        assert "style-src-attr 'unsafe-inline'" in policy_of(response) and "style-src 'self'" in policy_of(response)
        assert "style-src-attr 'none'" in policy_of(visitor("dana").get("/designer"))


class TestErrors:
    def test_a_404_page(self, visitor):
        response = visitor("carla").get("/no/such/page")
        assert response.status_code == 404
        assert_protected(response)

    def test_a_500_page(self, visitor, monkeypatch):
        monkeypatch.setattr(handlers, "inbox", lambda *args, **kwargs: 1 / 0)
        response = visitor("carla").get("/inbox")
        assert response.status_code == 500
        assert_protected(response)

    def test_a_missing_static_file_is_not_cached(self, app):
        response = app.test_client().get("/static/no-such-file.css")
        assert response.status_code == 404
        assert_protected(response)


class TestTheApi:
    def test_a_json_answer(self, app, token):
        response = app.test_client().get("/api/v1/me", headers=bearer(token))
        assert response.status_code == 200 and response.is_json
        assert_protected(response)

    @pytest.mark.parametrize(("path", "authorised", "status"), [("/api/v1/cases/999999", True, 404),
                                                                 ("/api/v1/me", False, 401)])
    def test_a_json_error(self, app, token, path, authorised, status):
        response = app.test_client().get(path, headers=bearer(token) if authorised else {})
        assert response.status_code == status and response.is_json
        assert_protected(response)


class TestAssetsAndMetrics:
    @pytest.mark.parametrize("path", ["/static/casework.css", "/vendor/bpmn-js/assets/bpmn-js.css"])
    def test_a_static_asset_may_be_cached(self, visitor, path):
        response = visitor("carla").get(path)
        assert response.status_code == 200
        assert_protected(response, cacheable=True)

    def test_metrics(self, app, token):
        response = app.test_client().get("/metrics", headers=bearer(token))
        assert response.status_code == 200 and "casework_cases" in response.get_data(as_text=True)
        assert_protected(response)
        assert_protected(app.test_client().get("/metrics"))
