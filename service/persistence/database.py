"""Engines for SQLite and PostgreSQL, and the schema upgrade through Alembic."""
from __future__ import annotations

import ast
import logging
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, column, create_engine, event, inspect, select, table, text
from sqlalchemy.engine import URL, make_url

if TYPE_CHECKING:  # Alembic takes a few tenths of a second to import: only an actual upgrade loads it.
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")

# Execution option naming the statement that opens a transaction on SQLite.
SQLITE_BEGIN = "casework_sqlite_begin"
BEGIN_WRITE = "BEGIN IMMEDIATE"
BEGIN_READ = "BEGIN"

# Key of the PostgreSQL advisory lock that serialises concurrent schema upgrades.
_MIGRATION_LOCK = 0x43415345


def default_sqlite_url(instance_path: str | Path) -> str:
    """Return the URL of the SQLite database file kept in the Flask instance folder."""
    return f"sqlite:///{Path(instance_path).absolute() / 'casework.db'}"


def normalise_url(url: str | URL) -> URL:
    """Parse a database URL, choosing psycopg 3 for a plain `postgresql://` URL."""
    url = make_url(url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def make_engine(url: str | URL, **engine_options) -> Engine:
    """Create an engine configured for how Casework uses SQLite or PostgreSQL."""
    url = normalise_url(url)
    # Bound values are case data: keep them out of error messages (and so out of logs and incidents).
    engine_options.setdefault("hide_parameters", True)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, **engine_options)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine
    engine_options.setdefault("pool_pre_ping", True)
    return create_engine(url, **engine_options)


def _configure_sqlite_connection(dbapi_connection, connection_record) -> None:
    # sqlite3 must not issue BEGIN itself: _begin_sqlite_transaction does, choosing the lock.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection) -> None:
    # A writer takes the write lock when it begins, so two writers queue on busy_timeout
    # instead of failing when a read lock cannot be upgraded. None: no transaction at all.
    statement = connection.get_execution_options().get(SQLITE_BEGIN, BEGIN_WRITE)
    if statement is not None:
        connection.exec_driver_sql(statement)


def alembic_config(url: str | URL | None = None) -> Config:
    """Build the Alembic configuration in code, so no alembic.ini is needed."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if url is not None:
        # Kept out of the ini options: ConfigParser would read '%' in a URL as interpolation.
        config.attributes["url"] = normalise_url(url)
    return config


def upgrade_database(url: str | URL) -> None:
    """Create the database schema or bring it up to the newest migration.

    A database already at the newest migration is only read (its alembic_version): Alembic is
    neither imported nor run, which is most of a restart's schema check.
    """
    url = normalise_url(url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    try:
        if _at_head(engine):
            logger.info("Database schema is up to date")
            return
        from alembic import command

        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
    logger.info("Database schema is up to date")


def migration_heads() -> frozenset[str]:
    """The newest revision(s) of the migrations, read from the scripts' `revision` and `down_revision`."""
    return _migration_heads(tuple(sorted((path.name, path.stat().st_mtime_ns)
                                         for path in (MIGRATIONS / "versions").glob("*.py"))))


@lru_cache(maxsize=4)
def _migration_heads(scripts: tuple[tuple[str, int], ...]) -> frozenset[str]:
    revisions, replaced = set(), set()
    for name, _ in scripts:
        assigned = {}
        for node in ast.parse((MIGRATIONS / "versions" / name).read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id in ("revision", "down_revision"):
                    assigned[node.targets[0].id] = ast.literal_eval(node.value)
        revisions.add(assigned["revision"])
        down = assigned.get("down_revision")
        replaced.update(down if isinstance(down, (tuple, list)) else [down] if down else [])
    return frozenset(revisions - replaced)


def _at_head(engine: Engine) -> bool:
    """Whether the database records exactly the newest migration (False on any doubt: Alembic decides)."""
    try:
        heads = migration_heads()
    except (OSError, SyntaxError, ValueError, KeyError):
        logger.warning("Could not read the migration scripts' revisions; asking Alembic", exc_info=True)
        return False
    with engine.execution_options(**{SQLITE_BEGIN: BEGIN_READ}).connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        recorded = connection.execute(select(column("version_num")).select_from(table("alembic_version"))).scalars()
        return bool(heads) and frozenset(recorded) == heads
