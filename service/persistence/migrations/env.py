"""Alembic environment: run Casework's migrations on the connection or URL given in code.

`service.persistence.database.alembic_config` builds the configuration; there is no
alembic.ini. `upgrade_database` passes an open connection in `config.attributes`.
"""
from alembic import context

from service.persistence.database import make_engine
from service.persistence.tables import metadata


def _configure(**options) -> None:
    context.configure(target_metadata=metadata, compare_type=True, **options)


def run_migrations_offline() -> None:
    """Print the SQL for a database named by URL, without connecting to it."""
    url = context.config.attributes["url"]
    _configure(url=url, literal_binds=True, render_as_batch=url.get_backend_name() == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate inside the caller's transaction, or in one of our own."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = make_engine(context.config.attributes["url"])
    try:
        with engine.begin() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
