"""The managers' list of stuck cases: what the scan flagged, why, since when, with counts to steer by."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from ..errors import CaseworkError, Forbidden, InvalidInput
from ..model import FlaggedCase, FlagReason, User
from ..ports import FlagQuery
from ..services import Services
from .common import is_supervisor, people_covering
from .tasks import assign_task

EXPORT_BATCH = 1000
MAX_BULK = 500


@dataclass
class StuckCases:
    """One page of flags, how many match, and the counts per reason and per setting (the filters applied)."""

    items: list[FlaggedCase]
    total: int
    by_reason: dict[FlagReason, int]
    by_setting: dict[str, int]


def stuck_cases(services: Services, *, actor: User, query: FlagQuery) -> StuckCases:
    """Return a page of the stuck cases a supervisor may see, with counts."""
    query = _in_scope(actor, query)
    with services.uow(read_only=True) as uow:
        return StuckCases(
            items=uow.flags.query_in_cases(query),
            total=uow.flags.count(query),
            by_reason=uow.flags.count_by_reason(replace(query, reasons=None)),
            by_setting=uow.flags.count_by_setting(replace(query, settings=_in_scope(actor, FlagQuery()).settings)),
        )


def export_stuck_cases(services: Services, *, actor: User, query: FlagQuery) -> Iterator[FlaggedCase]:
    """Every stuck case the query selects, in its order, read a batch per short transaction.

    The actor is checked now, not when the rows are first read: a refusal must come
    before a streamed response has begun.
    """
    query = _in_scope(actor, query)

    def batches() -> Iterator[FlaggedCase]:
        offset = 0
        while True:
            with services.uow(read_only=True) as uow:
                batch = uow.flags.query_in_cases(replace(query, limit=EXPORT_BATCH, offset=offset))
            yield from batch
            if len(batch) < EXPORT_BATCH:
                return
            offset += EXPORT_BATCH

    return batches()


def _in_scope(actor: User, query: FlagQuery) -> FlagQuery:
    """The query kept to the settings the actor covers; only supervisors see stuck cases."""
    if not is_supervisor(actor):
        raise Forbidden("Only supervisors and managers see the stuck-case list.")
    scope = actor.setting_scope
    if scope is None:
        return query
    chosen = [s for s in query.settings if s in scope] if query.settings is not None else scope
    return replace(query, settings=chosen)


def reassign_candidates(services: Services, *, actor: User, setting: str | None = None) -> list[User]:
    """Whom a supervisor's stuck tasks can go to: active people covering `setting`, else any setting of theirs."""
    if setting and not actor.covers(setting):
        return []  # who works another setting is not this supervisor's to see
    with services.uow(read_only=True) as uow:
        return people_covering(uow, [setting] if setting else actor.setting_scope)


@dataclass
class Reassigned:
    """What a bulk reassignment did: the tasks now with the new assignee, and why the others were refused."""

    assigned: list[int]
    refused: dict[int, str]


def reassign_tasks(services: Services, *, actor: User, task_ids: list[int], assignee: str) -> Reassigned:
    """Assign each task to `assignee` in its own transaction (supervisors); one refusal stops no other."""
    if not is_supervisor(actor):
        raise Forbidden("Only supervisors can reassign tasks.")
    if not task_ids:
        raise InvalidInput("Choose at least one task to reassign.", {"task": ["Choose at least one task."]})
    if len(task_ids) > MAX_BULK:
        raise InvalidInput(f"Reassign at most {MAX_BULK} tasks at a time.", {"task": ["Too many tasks."]})
    result = Reassigned(assigned=[], refused={})
    for task_id in dict.fromkeys(task_ids):
        try:
            assign_task(services, actor=actor, task_id=task_id, assignee=assignee)
        except CaseworkError as refused:
            result.refused[task_id] = refused.message
        else:
            result.assigned.append(task_id)
    with services.uow() as uow:
        uow.flags.follow_assignee(result.assigned, assignee)
        uow.commit()
    return result
