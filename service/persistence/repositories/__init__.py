"""The ports of `workflows.ports`, implemented with SQLAlchemy Core on one connection.

Repositories never commit: the unit of work that owns the connection does.
"""
from .cases import SqlCaseEventRepository, SqlCaseRepository, SqlIncidentRepository, SqlNoteRepository
from .catalog import SqlProcessVersionRepository
from .flags import SqlCaseFlagRepository
from .marks import SqlSchedulerMarkRepository
from .tasks import SqlMessageWaitRepository, SqlTaskRepository, SqlTimerRepository
from .users import SqlUserRepository

__all__ = [
    "SqlCaseEventRepository",
    "SqlCaseFlagRepository",
    "SqlCaseRepository",
    "SqlIncidentRepository",
    "SqlMessageWaitRepository",
    "SqlNoteRepository",
    "SqlProcessVersionRepository",
    "SqlSchedulerMarkRepository",
    "SqlTaskRepository",
    "SqlTimerRepository",
    "SqlUserRepository",
]
