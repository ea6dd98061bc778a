"""Fixtures shared by every kind of test: real databases, fresh for each test."""
from __future__ import annotations

import os
import uuid

import pytest

POSTGRES_URL = os.environ.get("CASEWORK_TEST_POSTGRES_URL", "postgresql+psycopg://127.0.0.1:5432/test")


def _libpq_url(url) -> str:
    """Render a SQLAlchemy URL as a URL psycopg accepts."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url():
    """The test PostgreSQL server; skipped when unreachable, failed when CASEWORK_REQUIRE_POSTGRES=1."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=5):
            pass
    except psycopg.OperationalError as error:
        message = f"PostgreSQL at {url.render_as_string(hide_password=True)} is not reachable: {error}"
        if os.environ.get("CASEWORK_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """URL of an empty database: a new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'casework.db'}"
        return
    yield from _fresh_schema(request.getfixturevalue("postgres_url"))


@pytest.fixture
def postgres_database_url(postgres_url):
    """URL of a new, empty PostgreSQL schema, for what only PostgreSQL deployments do."""
    yield from _fresh_schema(postgres_url)


def _fresh_schema(server):
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_libpq_url(server), autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield server.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq_url(server), autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def uow_factory(database_url):
    """A unit-of-work factory on a freshly migrated database."""
    from service.persistence import UnitOfWorkFactory, make_engine, upgrade_database

    upgrade_database(database_url)
    factory = UnitOfWorkFactory(make_engine(database_url))
    yield factory
    factory.dispose()
