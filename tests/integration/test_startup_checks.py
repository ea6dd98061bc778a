"""What a restart skips: Alembic on a database already at head, parsing a bpmn/ folder deployed before.

Each shortcut must still do the full work when there is work to do.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from service import create_app
from service.cli import deploy_folder
from service.persistence import make_engine, normalise_url, upgrade_database
from service.persistence.database import alembic_config, migration_heads

REPO = Path(__file__).resolve().parents[2]
DIAGRAMS = REPO / "tests" / "data" / "diagrams"


def _recorded_revisions(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def test_the_heads_read_from_the_scripts_are_alembics_heads():
    from alembic.script import ScriptDirectory

    assert migration_heads() == set(ScriptDirectory.from_config(alembic_config()).get_heads())


def test_an_old_database_is_still_upgraded_to_head(database_url):
    from alembic import command

    url = normalise_url(database_url)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "0005")
        with engine.connect() as connection:
            assert not inspect(connection).has_table("api_token")
    finally:
        engine.dispose()

    upgrade_database(database_url)

    assert _recorded_revisions(database_url) == migration_heads()
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert inspect(connection).has_table("api_token"), "0006 ran"
    finally:
        engine.dispose()


def test_an_empty_database_is_created_and_one_at_head_is_left_to_itself(database_url, monkeypatch):
    from alembic import command

    upgrade_database(database_url)
    assert _recorded_revisions(database_url) == migration_heads()

    def refuse(*args, **kwargs):
        raise AssertionError("Alembic ran on a database already at head")

    monkeypatch.setattr(command, "upgrade", refuse)
    upgrade_database(database_url)
    assert _recorded_revisions(database_url) == migration_heads()


@pytest.fixture
def app(database_url, tmp_path):
    folder = tmp_path / "bpmn"
    shutil.copytree(DIAGRAMS, folder)
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "test", "SCHEDULER_ENABLED": False,
                      "BPMN_PATH": str(folder)})
    yield app
    app.extensions["casework"].uow.dispose()


def test_a_restart_on_deployed_files_returns_their_versions_without_parsing_them(app, monkeypatch):
    from workflows import catalog

    folder = Path(app.config["BPMN_PATH"])
    first = deploy_folder(app, folder, only_new=True)

    def refuse(diagram_set):
        raise AssertionError(f"{diagram_set.name} was parsed again")

    monkeypatch.setattr(catalog, "build_bundles", refuse)
    restarted = deploy_folder(app, folder, only_new=True)
    assert [(v.id, v.process_id, v.version) for v in restarted] == [(v.id, v.process_id, v.version) for v in first]


def test_a_restart_after_a_file_changed_deploys_and_checks_that_set(app):
    folder = Path(app.config["BPMN_PATH"])
    first = {v.process_id: v for v in deploy_folder(app, folder, only_new=True)}
    bpmn = folder / "intake" / "intake.bpmn"
    bpmn.write_bytes(bpmn.read_bytes().replace(b'name="', b'name="Edited ', 1))

    restarted = {v.process_id: v for v in deploy_folder(app, folder, only_new=True)}

    assert restarted["intake"].version == first["intake"].version + 1
    assert {p: v.id for p, v in restarted.items() if p != "intake"} == {p: v.id for p, v in first.items() if p != "intake"}


def test_a_restart_on_a_changed_file_with_an_error_still_refuses_it(app):
    from workflows.errors import DiagramError

    folder = Path(app.config["BPMN_PATH"])
    deploy_folder(app, folder, only_new=True)
    bpmn = folder / "intake" / "intake.bpmn"
    bpmn.write_text(bpmn.read_text().replace("</bpmn:definitions>", ""))

    with pytest.raises(DiagramError):
        deploy_folder(app, folder, only_new=True)
