"""A failure nobody planned for reaches a person or a client as a plain sentence: no traceback, no file, no detail."""
from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from workflows import accounts, handlers

# What an exception's text can carry: a secret, a file on the server, a patient's name.
DETAIL = "api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc reading /srv/casework/instance/secret_key for Zebulon Quackenbush"
LEAKS = ("Traceback", 'File "', ".py", "sk_live_4eC39", "/srv/casework", "Zebulon", "RuntimeError", "SELECT",
         "INSERT", "sqlite3", "MRN-987654")


def fail_with(error: Exception):
    def fail(*args, **kwargs):
        raise error
    return fail


def database_down() -> OperationalError:
    return OperationalError("SELECT * FROM human_task WHERE subject_name = ?", ("Zebulon Quackenbush",),
                            sqlite3.OperationalError("unable to open database file /srv/casework/casework.db"))


def assert_nothing_leaks(response) -> None:
    body = response.get_data(as_text=True)
    leaked = [text for text in LEAKS if text in body]
    assert not leaked, f"the answer shows {leaked}: {body[:500]}"


@pytest.fixture
def api(app, services):
    _, token = accounts.add_user(services, username="ivy", roles=["case_manager"])
    client = app.test_client()
    return lambda method, path: client.open(path, method=method, headers={"Authorization": f"Bearer {token}"})


class TestAPageThatFails:
    def test_an_unexpected_exception_is_a_500_page_saying_nothing_was_changed(self, visitor, monkeypatch, caplog):
        monkeypatch.setattr(handlers, "inbox", fail_with(RuntimeError(DETAIL)))
        response = visitor("carla").get("/inbox")
        assert response.status_code == 500
        assert "Something went wrong on our side" in response.get_data(as_text=True)
        assert "Nothing was changed" in response.get_data(as_text=True)
        assert_nothing_leaks(response)
        logged = [record for record in caplog.records if record.levelno >= logging.ERROR]
        assert logged and "RuntimeError" in logged[-1].getMessage(), "the error is logged, by its kind"

    def test_a_database_that_cannot_be_reached_is_a_503_page_asking_to_try_again(self, visitor, monkeypatch):
        monkeypatch.setattr(handlers, "inbox", fail_with(database_down()))
        response = visitor("carla").get("/inbox")
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert "The database is unavailable" in response.get_data(as_text=True)
        assert_nothing_leaks(response)

    def test_another_database_error_is_a_500_page_without_the_statement_or_its_values(self, visitor, monkeypatch):
        error = IntegrityError("INSERT INTO case_note (body) VALUES (?)", ("MRN-987654",),
                               sqlite3.IntegrityError("UNIQUE constraint failed: case_note.body"))
        monkeypatch.setattr(handlers, "inbox", fail_with(error))
        response = visitor("carla").get("/inbox")
        assert response.status_code == 500
        assert_nothing_leaks(response)


class TestAnApiCallThatFails:
    def test_an_unexpected_exception_is_a_json_500(self, api, monkeypatch):
        monkeypatch.setattr(handlers, "list_tasks", fail_with(RuntimeError(DETAIL)))
        response = api("GET", "/api/v1/tasks")
        assert response.status_code == 500 and response.is_json
        assert response.json["error"]["message"].startswith("Something went wrong on our side; nothing was changed.")
        assert_nothing_leaks(response)

    def test_a_database_that_cannot_be_reached_is_a_json_503(self, api, monkeypatch):
        monkeypatch.setattr(handlers, "list_tasks", fail_with(database_down()))
        response = api("GET", "/api/v1/tasks")
        assert response.status_code == 503 and response.is_json and response.headers["Retry-After"]
        assert "The database is unavailable" in response.json["error"]["message"]
        assert_nothing_leaks(response)

    @pytest.mark.parametrize(("method", "path", "status"), [("DELETE", "/api/v1/cases", 405),
                                                            ("GET", "/api/v1/no-such-thing", 404)])
    def test_a_wrong_method_or_address_is_answered_in_json(self, api, method, path, status):
        response = api(method, path)
        assert response.status_code == status and response.is_json
        assert path in response.json["error"]["message"]


class TestFailuresOutsideThePagesAndTheApi:
    """Static files and /metrics have no error handlers of their own: they get the same answers."""

    @pytest.mark.parametrize(("endpoint", "path"), [("static", "/static/casework.css"),
                                                    ("metrics.metrics", "/metrics")])
    def test_an_unexpected_exception_is_the_500_page(self, app, monkeypatch, endpoint, path):
        monkeypatch.setitem(app.view_functions, endpoint, fail_with(RuntimeError(DETAIL)))
        response = app.test_client().get(path)
        assert response.status_code == 500
        assert "Something went wrong on our side" in response.get_data(as_text=True)
        assert_nothing_leaks(response)

    def test_a_database_that_cannot_be_reached_is_the_503_page(self, app, monkeypatch):
        monkeypatch.setitem(app.view_functions, "metrics.metrics", fail_with(database_down()))
        response = app.test_client().get("/metrics")
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert_nothing_leaks(response)

    @pytest.mark.parametrize(("method", "path", "status"), [("GET", "/no/such/page", 404),
                                                            ("GET", "/static/no-such-file.css", 404),
                                                            ("POST", "/kpis", 405)])
    def test_a_wrong_address_or_method_is_the_error_page(self, visitor, method, path, status):
        response = visitor("carla").client.open(path, method=method)
        assert response.status_code == status
        page = response.get_data(as_text=True)
        assert f"Error {status}." in page and "Back to the inbox" in page
