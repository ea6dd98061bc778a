"""Plain records of the domain: no framework, no behaviour beyond small helpers."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class CaseStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    SUSPENDED = "suspended"
    ERROR = "error"


class TaskStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TimerStatus(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"
    FAILED = "failed"
    # The case is suspended: the clock stands still, and the timer moves on by the pause when it resumes.
    PAUSED = "paused"


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


OPEN_TASK_STATUSES = (TaskStatus.OPEN, TaskStatus.CLAIMED)


@dataclass
class ProcessVersion:
    """One deployment of a diagram set: the exact files, so a case can always be reloaded."""

    process_id: str
    version: int
    content_hash: str
    files: dict[str, bytes]
    name: str
    setting: str
    deployed_by: str
    deployed_at: datetime
    note: str | None = None  # the designer's account of what changed and why
    id: int | None = None


@dataclass
class ProcessDraft:
    """The working copy of one diagram set that designers edit before deploying it.

    `revision` counts the saves, so a designer saving over someone else's newer save is refused;
    a draft nobody has saved yet has revision 0, no id and no saver.
    """

    set_name: str
    revision: int = 0
    files: dict[str, bytes] = field(default_factory=dict)
    based_on_version_id: int | None = None  # the deployed version it was copied from
    created_by: str | None = None
    created_at: datetime | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None
    id: int | None = None


@dataclass
class Case:
    process_version_id: int
    process_id: str
    state: str
    status: CaseStatus
    opened_at: datetime
    opened_by: str
    subject_name: str = ""
    subject_ref: str = ""
    setting: str = ""
    priority: int = 3
    data: dict[str, Any] = field(default_factory=dict)
    closed_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1
    suspended_at: datetime | None = None
    # Diagram file -> ids of the elements the case has completed: the engine's own history is pruned.
    elements_done: dict[str, list[str]] | None = None
    id: int | None = None


@dataclass
class HumanTask:
    """A READY user or manual task as the inbox shows it."""

    case_id: int
    task_ref: str
    element_id: str
    title: str
    candidate_role: str | None
    status: TaskStatus
    created_at: datetime
    priority: int = 3
    assignee: str | None = None
    due_at: datetime | None = None
    at_risk_at: datetime | None = None
    form_ref: str | None = None
    ui_form_ref: str | None = None
    instructions: str = ""
    completed_at: datetime | None = None
    completed_by: str | None = None
    adhoc: bool = False  # added to the case by a person; the diagram knows nothing of it
    draft: dict[str, Any] | None = None  # form data saved, not submitted (unvalidated)
    draft_saved_at: datetime | None = None
    draft_saved_by: str | None = None
    id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_TASK_STATUSES


@dataclass
class TaskInCase:
    """An inbox row: a task with what the inbox shows of its case."""

    task: HumanTask
    subject_name: str
    subject_ref: str
    setting: str
    process_id: str


@dataclass
class Timer:
    case_id: int
    task_ref: str
    element_id: str
    due_at: datetime
    status: TimerStatus = TimerStatus.PENDING
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    fired_at: datetime | None = None
    retry_at: datetime | None = None
    last_error: str | None = None
    id: int | None = None


class FlagReason(StrEnum):
    """Why the stuck-case scan flags a case for a manager."""

    TASK_OVERDUE = "task_overdue"
    TASK_AT_RISK = "task_at_risk"
    TIMER_OVERDUE = "timer_overdue"
    INCIDENT = "incident"
    STALLED = "stalled"
    IDLE = "idle"


@dataclass
class CaseFlag:
    """One finding of the stuck-case scan: a case that needs a manager, and why, since when."""

    case_id: int
    reason: FlagReason
    subject: str  # what the finding is about: "task:12", "timer:5", "incident:3" or "case"
    since: datetime  # when the condition began (the task fell due, the case last moved ...)
    detected_at: datetime  # when a scan first found it; kept while the flag stands
    setting: str = ""
    process_id: str = ""
    assignee: str | None = None
    candidate_role: str | None = None
    element_id: str | None = None
    detail: str = ""
    id: int | None = None


@dataclass
class FlaggedCase:
    """A stuck-case list row: a flag with what the list shows of its case."""

    flag: CaseFlag
    subject_name: str
    subject_ref: str
    case_status: CaseStatus


@dataclass
class MessageWait:
    """A case waiting for a named message, with the correlation values it expects."""

    case_id: int
    name: str
    task_ref: str
    element_id: str
    correlation: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass
class CaseEvent:
    case_id: int
    at: datetime
    actor: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass
class Incident:
    case_id: int
    kind: str
    message: str
    created_at: datetime
    element_id: str | None = None
    task_ref: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    status: IncidentStatus = IncidentStatus.OPEN
    resolution: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    id: int | None = None


@dataclass
class Note:
    """A case manager's free-text note on a case: kept, never edited."""

    case_id: int
    at: datetime
    author: str
    text: str
    id: int | None = None


ALL_SETTINGS = "*"


@dataclass
class User:
    username: str
    roles: list[str]
    display_name: str = ""
    active: bool = True
    password_hash: str | None = None  # None: the user cannot sign in to the web pages (API token only)
    # The settings (acute_hospital, ...) whose cases the user may see; ALL_SETTINGS covers every one.
    settings: list[str] = field(default_factory=lambda: [ALL_SETTINGS])
    failed_signins: int = 0  # wrong passwords in a row; at the limit the account locks until locked_until
    locked_until: datetime | None = None
    id: int | None = None

    def has_role(self, role: str | None) -> bool:
        return role is not None and role in self.roles

    def covers(self, setting: str) -> bool:
        """Whether the user may see cases of this setting."""
        return ALL_SETTINGS in self.settings or setting in self.settings

    @property
    def setting_scope(self) -> list[str] | None:
        """The settings a query must keep to for this user; None when they cover every setting."""
        return None if ALL_SETTINGS in self.settings else list(self.settings)


@dataclass
class ApiToken:
    """A system's credential: a named secret, stored hashed, acting with some of its user's roles."""

    user_id: int
    name: str
    token_hash: str
    created_at: datetime
    created_by: str
    roles: list[str] | None = None  # None: all of the user's roles, whatever they are at the time
    expires_at: datetime | None = None
    revoked: bool = False
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    id: int | None = None

    def usable_at(self, now: datetime) -> bool:
        """Whether the token still authenticates: not revoked and not expired."""
        return not self.revoked and (self.expires_at is None or now < self.expires_at)
