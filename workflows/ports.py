"""Protocols the core needs from the outside world: storage, transactions, time.

The service implements them with SQLAlchemy; unit tests implement them with fakes.
Repositories never commit: the unit of work does, once per action.
"""
from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from .kpis import CaseFacts, Submission, TaskFacts
from .model import (
    OPEN_TASK_STATUSES,
    ApiToken,
    Case,
    CaseEvent,
    CaseFlag,
    CaseStatus,
    FlagReason,
    HumanTask,
    Incident,
    MessageWait,
    Note,
    ProcessDraft,
    ProcessVersion,
    TaskInCase,
    TaskStatus,
    Timer,
    User,
)

if TYPE_CHECKING:  # workflows.audit uses the ports at run time
    from .audit import CaseRead, TrailEntry


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""


class ProcessVersionRepository(Protocol):
    def add(self, process_version: ProcessVersion) -> ProcessVersion: ...
    def get(self, process_version_id: int) -> ProcessVersion | None: ...
    def latest(self, process_id: str) -> ProcessVersion | None: ...
    def list(self, *, process_id: str | None = None) -> list[ProcessVersion]: ...
    def was_deployed(self, process_id: str, content_hash: str) -> bool:
        """Whether any version of the process was deployed with exactly these files (no files read)."""
    def settings_by_process(self) -> dict[str, str]:
        """Every deployed process id with the setting of its latest version (no files read)."""


@dataclass(frozen=True)
class VersionEntry:
    """A deployed process version as the designer's history lists it: its file paths, not their bytes."""

    id: int
    process_id: str
    version: int
    name: str
    setting: str
    content_hash: str
    deployed_by: str
    deployed_at: datetime
    note: str | None
    paths: tuple[str, ...]


class DraftRepository(Protocol):
    """The designers' working copies of diagram sets, one per set, and the history they start from."""

    def get(self, set_name: str) -> ProcessDraft | None:
        """The set's draft with its files, or None."""

    def list(self) -> list[ProcessDraft]:
        """Every draft, by set name, without its files."""

    def add(self, draft: ProcessDraft) -> bool:
        """Store a new draft with its files and give it an id; False when the set already has one."""

    def save(self, draft: ProcessDraft, *, expected_revision: int, changed: Mapping[str, bytes]) -> bool:
        """Write the `changed` files, the draft's revision and who saved it when, if the stored revision is expected.

        False, and nothing written, when someone saved since `expected_revision`.
        """

    def rebase(self, draft_id: int, *, based_on_version_id: int | None) -> None: ...

    def remove(self, draft_id: int, *, revision: int | None = None) -> bool:
        """Delete the draft and its files (only at `revision` if given); False when nothing was deleted."""

    def latest_version(self, set_name: str) -> ProcessVersion | None:
        """The most recently deployed version of any process of the set, with its files."""

    def history(self) -> list[VersionEntry]:
        """Every deployed version, by setting, process and version, without file contents."""


class CaseRepository(Protocol):
    def add(self, case: Case) -> Case:
        """Insert a new case and give it an id."""

    def get(self, case_id: int) -> Case | None: ...

    def save(self, case: Case) -> None:
        """Write the case if nobody changed it since it was read, and bump its version.

        Raises StaleCase when the stored version is no longer `case.version`.
        """

    def list(
        self, *, status: str | None = None, process_id: str | None = None, limit: int = 50, offset: int = 0,
        settings: Sequence[str] | None = None,
    ) -> list[Case]: ...


class TaskSort(StrEnum):
    """Orders of a task list; each ends with the task id, so pages never overlap."""

    DUE = "due"  # soonest due first, undated last, then oldest
    PRIORITY = "priority"  # priority 1 (highest) first, then as DUE
    CREATED = "created"  # oldest first


@dataclass(frozen=True)
class TaskQuery:
    """Which human tasks to list; every field is optional and they combine with AND.

    `setting`, `process_id` and `text` select by the task's case; `text` matches the
    subject's name or reference (any case, anywhere in it) or, when it is a number
    ("1042" or "#1042"), the case of that number.
    """

    case_id: int | None = None
    candidate_roles: Sequence[str] | None = None
    assignee: str | None = None
    statuses: Sequence[TaskStatus] | None = None
    unassigned_only: bool = False
    setting: str | None = None
    process_id: str | None = None
    priority: int | None = None
    due_from: datetime | None = None  # due at or after
    due_by: datetime | None = None  # due at or before
    text: str | None = None
    element_id: str | None = None  # the task type: one user task of the diagrams
    settings: Sequence[str] | None = None  # the settings the asking user covers; None: every one
    # (username, roles) of a user who is not a supervisor: only tasks of their roles, or theirs, or done by them.
    viewer: tuple[str, Sequence[str]] | None = None
    sort: TaskSort = TaskSort.DUE
    limit: int = 50
    offset: int = 0

    @classmethod
    def my_tasks(cls, user: User, **filters) -> TaskQuery:
        """A user's own open tasks, in the settings they cover ("My tasks")."""
        return cls(assignee=user.username, statuses=OPEN_TASK_STATUSES, settings=user.setting_scope, **filters)

    @classmethod
    def team_queue(cls, user: User, **filters) -> TaskQuery:
        """The unclaimed tasks of a user's roles, in the settings they cover ("My team's queue")."""
        return cls(candidate_roles=user.roles, unassigned_only=True, statuses=[TaskStatus.OPEN],
                   settings=user.setting_scope, **filters)

    def case_number(self) -> int | None:
        """The case number `text` names, if it is one."""
        digits = (self.text or "").strip().removeprefix("#")
        return int(digits) if digits.isdigit() and len(digits) <= 18 else None


class TaskRepository(Protocol):
    def add(self, task: HumanTask) -> HumanTask: ...
    def get(self, task_id: int) -> HumanTask | None: ...
    def with_case(self, task_id: int) -> tuple[HumanTask, Case] | None:
        """The task with this id and its case, read together (one round trip for every action on a task)."""
    def update(self, task: HumanTask) -> None: ...
    def for_case(self, case_id: int, *, open_only: bool = True) -> list[HumanTask]: ...
    def query(self, query: TaskQuery) -> list[HumanTask]: ...
    def query_in_cases(self, query: TaskQuery) -> list[TaskInCase]:
        """List the tasks the query selects with their cases' subject, setting and process (the inbox rows)."""

    def task_types(self, query: TaskQuery) -> dict[str, tuple[str, int]]:
        """Element id -> (title, how many) among the tasks the query selects but for its element filter, by title."""

    def count(self, query: TaskQuery) -> int: ...


class TimerRepository(Protocol):
    def add(self, timer: Timer) -> Timer: ...
    def get(self, timer_id: int) -> Timer | None: ...
    def update(self, timer: Timer) -> None: ...
    def for_case(self, case_id: int, *, pending_only: bool = True,
                 statuses: Collection[TimerStatus] | None = None) -> list[Timer]:
        """The case's timers: pending ones, all (`pending_only=False`), or those in `statuses` (fired ones pile up)."""
    def due(self, now: datetime, *, limit: int = 100) -> list[Timer]:
        """Pending timers whose due time has come, oldest first."""

    def claim(self, now: datetime, *, owner: str, lease_until: datetime, limit: int) -> list[Timer]:
        """Lease up to `limit` firable timers to `owner` until `lease_until`, oldest due first.

        Firable: pending, due at or before `now`, not waiting out a retry back-off, and
        not leased, or leased with the lease expired. Concurrent claimers never get the
        same timer while its lease runs.
        """

    def release(self, timer_id: int, *, owner: str) -> None:
        """Give up `owner`'s lease on a timer it did not fire, so the next poll takes it."""

    def release_all(self, *, owner: str) -> int:
        """Give up every lease `owner` holds on timers it has not fired; return how many."""


class MessageWaitRepository(Protocol):
    def replace_for_case(self, case_id: int, waits: list[MessageWait]) -> None: ...
    def for_case(self, case_id: int) -> list[MessageWait]: ...
    def find(self, name: str) -> list[MessageWait]:
        """Every case waiting for a message of this name (the caller matches correlation)."""


class CaseEventRepository(Protocol):
    def append(self, event: CaseEvent) -> CaseEvent:
        """Add an event to the trail; it is written at the latest when the unit of work commits."""

    def for_case(self, case_id: int) -> list[CaseEvent]: ...


class NoteRepository(Protocol):
    def add(self, note: Note) -> Note: ...

    def for_case(self, case_id: int) -> list[Note]:
        """The case's notes, newest first."""


class IncidentRepository(Protocol):
    def add(self, incident: Incident) -> Incident: ...
    def get(self, incident_id: int) -> Incident | None: ...
    def update(self, incident: Incident) -> None: ...
    def for_case(self, case_id: int, *, open_only: bool = True) -> list[Incident]: ...


class UserRepository(Protocol):
    def add(self, user: User) -> User: ...
    def get(self, user_id: int) -> User | None: ...
    def get_by_username(self, username: str) -> User | None: ...
    def update(self, user: User) -> None:
        """Write everything but the sign-in lock-out, which only the three methods below change."""
    def list(self) -> list[User]: ...

    def record_failed_signin(self, user_id: int, *, now: datetime, attempts: int,
                             lock_until: datetime) -> tuple[int, datetime | None] | None:
        """Count a wrong password atomically; the `attempts`-th locks until `lock_until` and starts the count again.

        Return (wrong passwords in a row, lock end or None), or None when the account was locked already.
        """

    def record_good_signin(self, user_id: int, *, now: datetime, checked_hash: str, new_hash: str | None) -> bool:
        """Clear the count (and store `new_hash`) unless the account locked or its password changed from `checked_hash`."""

    def unlock(self, user_id: int) -> None: ...


class ApiTokenRepository(Protocol):
    def add(self, token: ApiToken) -> ApiToken: ...
    def get(self, token_id: int) -> ApiToken | None: ...
    def get_by_hash(self, token_hash: str) -> ApiToken | None: ...
    def with_holder(self, token_hash: str) -> tuple[ApiToken, User] | None:
        """The token with this hash and its user, with roles and settings (one round trip per request)."""
    def for_user(self, user_id: int) -> list[ApiToken]: ...
    def update(self, token: ApiToken) -> None: ...


class FlagSort(StrEnum):
    SINCE = "since"  # stuck longest first
    REASON = "reason"
    SETTING = "setting"
    CASE = "case"


@dataclass(frozen=True)
class FlagQuery:
    """Which case flags to list or count; every field is optional and they combine with AND."""

    reasons: Sequence[FlagReason] | None = None
    settings: Sequence[str] | None = None
    process_id: str | None = None
    assignee: str | None = None
    case_id: int | None = None
    sort: FlagSort = FlagSort.SINCE
    limit: int = 50
    offset: int = 0


@dataclass
class FlagChanges:
    """How the stored flags moved to match one scan's findings."""

    raised: list[CaseFlag]
    cleared: list[CaseFlag]


class CaseFlagRepository(Protocol):
    def find_stuck(self, *, now: datetime, timer_due_before: datetime, idle_before: datetime) -> list[CaseFlag]:
        """Compute what holds at `now`, one finding per case, reason and subject, with set-based queries.

        Active cases only, except incidents (any case not completed or cancelled):
        task_overdue (open task due at or before `now`; since its due time), task_at_risk
        (at risk but not yet due; since its at-risk time), timer_overdue (pending timer due
        at or before `timer_due_before`), incident (open; since it was raised), stalled (no
        open task and no pending timer; since the last engine action), idle (last engine
        action before `idle_before`). Each finding's detected_at is `now`.
        """

    def replace_all(self, findings: list[CaseFlag], *, now: datetime) -> FlagChanges:
        """Make the stored flags exactly `findings`.

        A flag that continues keeps its id, `since` and `detected_at` (when a scan first
        found it), and takes the finding's other fields; new findings are inserted with
        detected_at = `now` and given ids; flags no longer found are deleted.
        """

    def query(self, query: FlagQuery) -> list[CaseFlag]:
        """List the flags the query selects, longest-standing first."""

    def count(self, query: FlagQuery) -> int: ...
    def count_by_reason(self, query: FlagQuery) -> dict[FlagReason, int]: ...
    def count_by_setting(self, query: FlagQuery) -> dict[str, int]: ...

    def follow_assignee(self, task_ids: Sequence[int], assignee: str) -> None:
        """Show the new assignee on the flags of reassigned tasks at once, not at the next scan."""

    def clear_settled(self, case_id: int) -> int:
        """Delete the case's flags a fix has settled, before the next scan; return how many.

        Idle and stalled flags go (the case has just acted; a scan raises stalled again if
        it still holds), and flags whose task is no longer open, whose timer is no longer
        pending or whose incident is no longer open.
        """


class SchedulerMarkRepository(Protocol):
    def take(self, name: str, *, owner: str, now: datetime, every: timedelta) -> bool:
        """Move the mark `name` to `now` for `owner` if it was last taken `every` ago or more, or never.

        Of concurrent takers in one interval exactly one gets True. The mark moves only
        when the unit of work commits, so a job that fails is retried at the next poll.
        """


@dataclass(frozen=True)
class VersionLoad:
    """A deployed process version, with its running cases and their open incidents in the asker's settings."""

    process_version_id: int
    process_id: str
    version: int
    name: str
    setting: str
    deployed_at: datetime
    running_cases: int
    open_incidents: int


@dataclass(frozen=True)
class ElementLoad:
    """How many running cases wait at one diagram element, and how many overdue tasks and open incidents are there."""

    element_id: str
    cases: int
    overdue_tasks: int
    open_incidents: int


@dataclass(frozen=True)
class WaitingCase:
    """A running case waiting at an element: what the list of those cases shows."""

    case_id: int
    subject_name: str
    subject_ref: str
    setting: str
    status: CaseStatus
    since: datetime  # when its first task there opened or incident there was raised; else the case's last move
    due_at: datetime | None  # the soonest due task or timer there
    assignee: str | None
    candidate_role: str | None
    overdue: bool
    incident: bool


class ProcessViewRepository(Protocol):
    """Where running cases wait, read from their open tasks, waiting timers, message waits and open incidents."""

    def versions(self, *, process_id: str | None = None, settings: Sequence[str] | None = None) -> list[VersionLoad]:
        """Every deployed version (of one process), by process and version, with counts of cases in `settings`."""

    def load_by_element(self, *, process_version_id: int, shown: Mapping[str, str | None], now: datetime,
                        settings: Sequence[str] | None = None) -> list[ElementLoad]:
        """Count the running cases of a version per element they are drawn on.

        `shown` maps a row's element id to the element it is drawn on; a row whose id it maps
        to None is left out, one it does not name is drawn on its own id.
        """

    def cases_at(self, *, process_version_id: int, element_ids: Sequence[str], now: datetime,
                 settings: Sequence[str] | None = None, limit: int = 50, offset: int = 0) -> list[WaitingCase]:
        """The running cases of a version waiting at any of these element ids.

        Longest waiting first (by the first task opened or incident raised there), then soonest
        due; cases that wait there only for a timer or a message (no known start) come last.
        """

    def count_cases_at(self, *, process_version_id: int, element_ids: Sequence[str],
                       settings: Sequence[str] | None = None) -> int: ...


class KpiRepository(Protocol):
    """What the KPIs read of one setting: one set-based query each, bounded by the period."""

    def case_data(self, *, setting: str, start: datetime, end: datetime, keys: Sequence[str]) -> list[CaseFacts]:
        """The case-data values named `keys` of each case of the setting open at some time in [start, end).

        Cancelled cases are left out. A missing value reads as None (SQLite reads a JSON true as 1).
        """

    def submissions(self, *, setting: str, start: datetime, end: datetime, element_ids: Sequence[str]) -> list[Submission]:
        """The data submitted on completing tasks of these types, on the cases `case_data` selects, whenever submitted."""

    def completed_tasks(self, *, setting: str, start: datetime, end: datetime) -> list[TaskFacts]:
        """Every task of the setting's cases completed in [start, end)."""

    def open_overdue_by_assignee(self, *, setting: str, due_before: datetime) -> dict[str, int]:
        """How many open tasks of the setting's cases each assignee holds that fell due before `due_before`."""


class AuditRepository(Protocol):
    """Who read which case, and the merged trail of changes and reads. It only grows: no update, no delete."""

    def add_reads(self, reads: Sequence[CaseRead]) -> None:
        """Append the reads, all in one statement."""

    def reads_of_case(self, case_id: int, *, limit: int = 50) -> list[CaseRead]:
        """The case's latest reads, newest first."""

    def has_actor(self, actor: str) -> bool:
        """Whether anything was ever done or read under this name."""

    def trail(self, *, case_id: int | None = None, actor: str | None = None, since: datetime | None = None,
              until: datetime | None = None, batch_size: int = 1000) -> Iterator[list[TrailEntry]]:
        """The changes and reads of a case and/or by an actor in [since, until), oldest first, a batch at a time."""


class UnitOfWork(Protocol):
    """One action, one transaction: `with uow: ...; uow.commit()`; leaving without commit rolls back."""

    processes: ProcessVersionRepository
    drafts: DraftRepository
    cases: CaseRepository
    tasks: TaskRepository
    timers: TimerRepository
    messages: MessageWaitRepository
    events: CaseEventRepository
    notes: NoteRepository
    incidents: IncidentRepository
    users: UserRepository
    tokens: ApiTokenRepository
    flags: CaseFlagRepository
    marks: SchedulerMarkRepository
    kpis: KpiRepository
    process_view: ProcessViewRepository
    audit: AuditRepository

    def __enter__(self) -> "UnitOfWork": ...
    def __exit__(self, *exc) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
