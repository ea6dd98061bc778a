"""The read half of the audit trail, and the whole trail of a case or a person for export.

Changes are `case_event` rows, appended by the handlers inside the transaction of the change.
Reads are `case_read` rows: the entry points record one each time case data is shown to
someone, after the visibility check has passed (a refused or unknown case records nothing)
and before the page or document is returned, so a read that cannot be recorded is not shown.
Lists that show only a summary of many cases (the inbox, the case list) are not recorded.
Both tables only grow: no port offers an update or a delete, and the database refuses both.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from .errors import InvalidInput, NotFound
from .handlers.common import is_supervisor
from .model import User
from .services import Services

EXPORT_BATCH = 1000
RECENT_READS = 50
WHAT_LENGTH = 255  # the case_read.what column
Row = TypeVar("Row")


class ReadChannel(StrEnum):
    PAGE = "page"
    API = "api"
    EXPORT = "export"


@dataclass
class CaseRead:
    """Someone was shown a case: who, when, through which channel, and what of it."""

    case_id: int
    at: datetime
    actor: str
    channel: str
    what: str
    id: int | None = None


@dataclass(frozen=True)
class TrailEntry:
    """One line of an audit trail: a change (a case event) or a read."""

    at: datetime
    actor: str
    case_id: int
    action: str  # "read", or the kind of the change ("task_completed", ...)
    channel: str | None = None  # reads only: page, api, export
    what: str | None = None  # reads only
    payload: dict[str, Any] | None = field(default=None, hash=False)  # changes only

    @property
    def detail(self) -> str:
        """What was read, or the change's payload as compact JSON."""
        if self.action == "read":
            return self.what or ""
        return json.dumps(self.payload or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_read(services: Services, *, actor: User | str, case_id: int, channel: ReadChannel, what: str) -> None:
    """Record that the actor was shown this case."""
    record_reads(services, actor=actor, case_ids=[case_id], channel=channel, what=what)


def record_reads(services: Services, *, actor: User | str, case_ids: Iterable[int], channel: ReadChannel,
                 what: str) -> None:
    """Record that the actor was shown each of these cases, in one statement (each case once)."""
    unique = list(dict.fromkeys(case_ids))
    if not unique:
        return
    name = actor.username if isinstance(actor, User) else actor
    now, channel, what = services.clock.now(), ReadChannel(channel), what[:WHAT_LENGTH]
    with services.uow() as uow:
        uow.audit.add_reads([CaseRead(case_id, now, name, channel.value, what) for case_id in unique])
        uow.commit()


def recording_exports(services: Services, rows: Iterable[Row], *, actor: User, case_id_of: Callable[[Row], int],
                      what: str) -> Iterator[Row]:
    """Pass the rows of a case-level export through, then record one export read per case listed.

    The reads are written in one statement when the export ends, and also when it stops
    early (the download was cancelled): every case whose row was handed out is recorded.
    """
    listed: list[int] = []
    try:
        for row in rows:
            listed.append(case_id_of(row))
            yield row
    finally:
        record_reads(services, actor=actor, case_ids=listed, channel=ReadChannel.EXPORT, what=what)


def recent_reads(services: Services, *, actor: User, case_id: int, limit: int = RECENT_READS) -> list[CaseRead]:
    """Who was last shown the case, newest first: for supervisors and admins only (others get nothing)."""
    if not is_supervisor(actor):
        return []
    with services.uow(read_only=True) as uow:
        return uow.audit.reads_of_case(case_id, limit=limit)


def export_trail(services: Services, *, case_id: int | None = None, username: str | None = None,
                 since: datetime | None = None, until: datetime | None = None, exported_by: str,
                 batch_size: int = EXPORT_BATCH) -> Iterator[TrailEntry]:
    """The changes and reads of one case or by one person, oldest first, from `since` up to (not at) `until`.

    The request is checked now, before anything is written out; the trail is then read a
    batch at a time. When the stream ends, each case it covered is recorded as read through
    an export by `exported_by` (the case asked for is recorded even when its trail is empty).
    """
    _check_request(case_id, username, since, until)
    with services.uow(read_only=True) as uow:
        if case_id is not None and uow.cases.get(case_id) is None:
            raise NotFound(f"Case {case_id} does not exist.")
        if username is not None and uow.users.get_by_username(username) is None and not uow.audit.has_actor(username):
            raise NotFound(f"No user '{username}' exists, and nothing was done or read under that name.")
    what = f"audit export of case {case_id}" if case_id is not None else f"audit export of the trail of {username}"
    return _stream(services, case_id=case_id, username=username, since=since, until=until, exported_by=exported_by,
                   what=what, batch_size=batch_size)


def _check_request(case_id: int | None, username: str | None, since: datetime | None, until: datetime | None) -> None:
    problems: dict[str, list[str]] = {}
    if (case_id is None) == (username is None):
        problems["case/user"] = ["Give either a case or a user, not both and not neither."]
    if username is not None and not username.strip():
        problems["user"] = ["Give a username."]
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            problems[name] = ["Give a time with a time zone (or in UTC)."]
    if not problems and since is not None and until is not None and since >= until:
        problems["until"] = [f"Give an end after the start ({since.isoformat()})."]
    if problems:
        raise InvalidInput("The audit export cannot be made as asked: " + " ".join(
            f"{name}: {' '.join(messages)}" for name, messages in problems.items()), problems)


def _stream(services: Services, *, case_id: int | None, username: str | None, since: datetime | None,
            until: datetime | None, exported_by: str, what: str, batch_size: int) -> Iterator[TrailEntry]:
    exported: dict[int, None] = {case_id: None} if case_id is not None else {}
    try:
        with services.uow(read_only=True) as uow:
            for batch in uow.audit.trail(case_id=case_id, actor=username, since=since, until=until,
                                         batch_size=batch_size):
                for entry in batch:
                    exported[entry.case_id] = None
                    yield entry
    finally:
        record_reads(services, actor=exported_by, case_ids=exported, channel=ReadChannel.EXPORT, what=what)
