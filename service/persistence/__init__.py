"""Storage for Casework: SQLAlchemy Core tables, repositories, the unit of work, migrations."""
from .database import alembic_config, default_sqlite_url, make_engine, normalise_url, upgrade_database
from .repositories import (
    SqlCaseEventRepository,
    SqlCaseRepository,
    SqlIncidentRepository,
    SqlMessageWaitRepository,
    SqlProcessVersionRepository,
    SqlTaskRepository,
    SqlTimerRepository,
    SqlUserRepository,
)
from .tables import metadata
from .uow import SqlAlchemyUnitOfWork, UnitOfWorkFactory

__all__ = [
    "SqlAlchemyUnitOfWork",
    "SqlCaseEventRepository",
    "SqlCaseRepository",
    "SqlIncidentRepository",
    "SqlMessageWaitRepository",
    "SqlProcessVersionRepository",
    "SqlTaskRepository",
    "SqlTimerRepository",
    "SqlUserRepository",
    "UnitOfWorkFactory",
    "alembic_config",
    "default_sqlite_url",
    "make_engine",
    "metadata",
    "normalise_url",
    "upgrade_database",
]
