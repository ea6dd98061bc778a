"""An app on a real database (SQLite file or PostgreSQL), with API users for each role."""
from __future__ import annotations

from pathlib import Path

import pytest

from service import create_app
from workflows import accounts

REPO = Path(__file__).resolve().parents[2]
ENGINE_DATA = REPO / "tests" / "data" / "engine"


class Api:
    """Calls the JSON API as one user."""

    def __init__(self, client, token: str):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path, **kwargs):
        return self.client.get(f"/api/v1{path}", headers=self.headers, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.client.post(f"/api/v1{path}", json=json, headers=self.headers, **kwargs)

    def put(self, path, json=None, **kwargs):
        return self.client.put(f"/api/v1{path}", json=json, headers=self.headers, **kwargs)


def make_app(database_url: str, tmp_path: Path):
    return create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test",
        "SCHEDULER_ENABLED": False,
        "SCRIPT_TIME_LIMIT_SECONDS": 0.5,
        "BPMN_PATH": str(REPO / "bpmn"),
    })


@pytest.fixture
def app(database_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return make_app(database_url, tmp_path)


@pytest.fixture
def users(app):
    services = app.extensions["casework"]
    tokens = {}
    for name, roles, settings in (
            ("carla", ["case_manager"], None), ("cole", ["case_manager"], None), ("pat", ["physician_advisor"], None),
            ("sue", ["supervisor", "case_manager"], None), ("dana", ["designer"], None),
            ("wendy", ["case_manager", "supervisor"], ["workers_comp"])):  # sees workers' comp cases only
        _, tokens[name] = accounts.add_user(services, username=name, roles=roles, settings=settings)
    return tokens


@pytest.fixture
def as_user(app, users):
    def api(name: str) -> Api:
        return Api(app.test_client(), users[name])
    return api


def diagram_files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}
