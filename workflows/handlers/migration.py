"""Compare deployed versions of a process, and move running cases onto a newer one.

A diff is for designers, supervisors and admins. Moving cases is a supervisor's: first a
dry run over the running cases of older versions (nothing written), then each chosen
case in a transaction of its own. The engine's rules are in engine_migration.py; here
the case must also be running, on an older version, without an open incident, and
unchanged since it was previewed when the preview's version of it is given. A refused
case changes nothing; the refusal is returned, not recorded.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace

from .. import engine_migration
from ..derive import record_event, sync_case
from ..engine_views import element_name_of
from ..errors import CaseworkError, Forbidden, InvalidInput, MigrationRefused, NotFound, StaleCase
from ..model import Case, CaseEvent, CaseStatus, TimerStatus, User
from ..ports import UnitOfWork, VersionLoad
from ..services import Services
from ..versions import ElementChange, VersionDiff, VersionLabel, diff_versions
from .common import chosen_version, deployed_versions, is_supervisor, visible_case

DIFF_ROLES = ("designer", "supervisor", "admin")
RUNNING = (CaseStatus.ACTIVE, CaseStatus.SUSPENDED)
# A preview loads and trial-migrates every case it lists: keep one page of them.
PREVIEW_LIMIT = 200
_PAGE = 100


@dataclass(frozen=True)
class MigrationCandidate:
    """A running case on an older version, and whether it can move to the chosen one (and why not)."""

    case_id: int
    subject_name: str
    subject_ref: str
    status: CaseStatus
    from_version: int
    case_version: int  # the case as previewed: give it back to refuse a case that changed meanwhile
    can_migrate: bool
    reason: str | None = None
    changed_steps: list[ElementChange] = field(default_factory=list)


@dataclass(frozen=True)
class MigrationResult:
    """What became of one case a supervisor chose to move."""

    case_id: int
    migrated: bool
    to_version: int
    from_version: int | None = None
    reason: str | None = None


def version_diff(services: Services, *, actor: User, process_id: str, from_version: int | None = None,
                 to_version: int | None = None) -> VersionDiff:
    """Compare two versions of a process (by default the latest with the one before it)."""
    if not any(actor.has_role(role) for role in DIFF_ROLES):
        raise Forbidden("Only designers, supervisors and admins can compare process versions.")
    with services.uow(read_only=True) as uow:
        versions = deployed_versions(uow, actor=actor, process_id=process_id)
        new = chosen_version(versions, process_id=process_id, version=to_version, field="to")
        if from_version is None and new.version == 1:
            raise NotFound(f"The process {process_id} has only version 1: "
                           "there is no earlier version to compare it with.")
        old = chosen_version(versions, process_id=process_id,
                             version=new.version - 1 if from_version is None else from_version, field="from")
        if old.version == new.version:
            raise InvalidInput("Choose two different versions to compare.",
                               {"to": [f"Version {new.version} is also the version to compare from."]})
        old_stored, new_stored = uow.processes.get(old.process_version_id), uow.processes.get(new.process_version_id)
        diff = diff_versions(old=services.bundles.get(uow, old_stored.id), new=services.bundles.get(uow, new_stored.id))
    return replace(diff, old=_label(old_stored), new=_label(new_stored))


def migration_target(services: Services, *, actor: User, process_id: str,
                     to_version: int | None = None) -> VersionLabel:
    """Say which version cases would move to (the latest by default): its number, deployer and date."""
    _require_supervisor(actor)
    with services.uow(read_only=True) as uow:
        versions = deployed_versions(uow, actor=actor, process_id=process_id)
        target = chosen_version(versions, process_id=process_id, version=to_version, field="to")
        return _label(uow.processes.get(target.process_version_id))


def migration_preview(services: Services, *, actor: User, process_id: str,
                      to_version: int | None = None) -> list[MigrationCandidate]:
    """Try moving each running case of an older version the actor can see; write nothing."""
    _require_supervisor(actor)
    with services.uow(read_only=True) as uow:
        versions = deployed_versions(uow, actor=actor, process_id=process_id)
        target = chosen_version(versions, process_id=process_id, version=to_version, field="to")
        older = {v.process_version_id: v for v in versions if v.version < target.version}
        candidates = []
        for case in _running_cases(uow, actor, process_id, older):
            try:
                moved = _migrate(services, uow, case, older[case.process_version_id], target, expected_version=None)
            except CaseworkError as refused:
                candidates.append(_candidate(case, older, can_migrate=False, reason=refused.message))
            else:
                candidates.append(_candidate(case, older, can_migrate=True, changed_steps=moved.changed_steps))
    return candidates


def migrate_cases(services: Services, *, actor: User, process_id: str, case_ids: list[int], to_version: int,
                  expected_versions: Mapping[int, int] | None = None) -> list[MigrationResult]:
    """Move each chosen case onto `to_version`, each in its own transaction; say per case what became of it."""
    _require_supervisor(actor)
    chosen = list(dict.fromkeys(case_ids))
    if not chosen:
        raise InvalidInput("Choose at least one case to move.", {"case_ids": ["Choose at least one case."]})
    with services.uow(read_only=True) as uow:
        versions = deployed_versions(uow, actor=actor, process_id=process_id)
        target = chosen_version(versions, process_id=process_id, version=to_version, field="to_version")
        for case_id in chosen:
            if visible_case(uow, actor, case_id).process_id != process_id:
                raise NotFound(f"Case {case_id} is not a case of the process {process_id}.")
    by_id = {version.process_version_id: version for version in versions}
    expected = expected_versions or {}
    return [_migrate_one(services, actor, case_id, by_id, target, expected.get(case_id)) for case_id in chosen]


def _migrate_one(services: Services, actor: User, case_id: int, versions: dict[int, VersionLoad],
                 target: VersionLoad, expected_version: int | None) -> MigrationResult:
    now = services.clock.now()
    from_version = None
    try:
        with services.uow() as uow:
            case = uow.cases.get(case_id)
            source = versions[case.process_version_id]
            from_version = source.version
            moved = _migrate(services, uow, case, source, target, expected_version=expected_version)
            paused = None
            if case.status == CaseStatus.SUSPENDED:
                # The clocks of a case on hold stand still: match its paused timer rows, do not add pending ones.
                paused = uow.timers.for_case(case.id, statuses=[TimerStatus.PAUSED])
            case.process_version_id = target.process_version_id
            # The messages a step waits for may have other names on the new version: write the waits again.
            moved.run.message_waits_at_load = None
            sync_case(uow, case, moved.run, now=now, actor=actor.username, policy=services.due_policy,
                      pending_timers=paused)
            _follow_new_specs(uow, case, moved.run)
            record_event(uow, case, now, actor.username, "case_migrated", {
                "from_version": source.version, "to_version": target.version,
                "from_process_version_id": source.process_version_id,
                "to_process_version_id": target.process_version_id,
                "changed_steps": [asdict(step) for step in moved.changed_steps],
            })
            uow.commit()
    except StaleCase:
        reason = f"Case {case_id} was changed by someone else while it was being moved; nothing was changed. Try again."
        return _refused(services, actor, case_id, target, from_version, reason)
    except CaseworkError as refused:
        return _refused(services, actor, case_id, target, from_version, refused.message)
    return MigrationResult(case_id, True, target.version, from_version)


def _refused(services: Services, actor: User, case_id: int, target: VersionLoad, from_version: int | None,
             reason: str) -> MigrationResult:
    """Record the refused attempt in the case's history (its own transaction: the case itself is untouched)."""
    with services.uow() as uow:
        uow.events.append(CaseEvent(case_id, services.clock.now(), actor.username, "case_migration_refused", {
            "from_version": from_version, "to_version": target.version,
            "to_process_version_id": target.process_version_id, "reason": reason,
        }))
        uow.commit()
    return MigrationResult(case_id, False, target.version, from_version, reason)


def _migrate(services: Services, uow: UnitOfWork, case: Case, source: VersionLoad, target: VersionLoad, *,
             expected_version: int | None) -> engine_migration.Migrated:
    """Refuse what the case's row says cannot move, then let the engine move it (nothing written)."""
    if case.status not in RUNNING:
        raise MigrationRefused(f"Case {case.id} is {case.status.value}; only active or suspended cases can move "
                               "to another version.")
    if source.version >= target.version:
        raise MigrationRefused(f"Case {case.id} runs version {source.version}; it can only move to a newer version.")
    if expected_version is not None and expected_version != case.version:
        raise MigrationRefused(f"Case {case.id} changed after it was previewed (someone worked it meanwhile); "
                               "preview again before moving it.")
    old_bundle = services.bundles.get(uow, case.process_version_id)
    for incident in uow.incidents.for_case(case.id, open_only=True):
        step = _element_name(old_bundle, incident.element_id)
        raise MigrationRefused(f"Case {case.id} has a failed step: resolve the failed step '{step}' first "
                               f"(incident {incident.id}).")
    run = services.engine.resume(old_bundle, case.state)
    new_bundle = services.bundles.get(uow, target.process_version_id)
    return engine_migration.migrate(run, bundle=new_bundle, version=target.version)


def _follow_new_specs(uow: UnitOfWork, case: Case, run) -> None:
    """Show each open task as the new version draws it; its assignee, draft and due time stay."""
    ready = {task.task_ref: task for task in run.ready_tasks()}
    for task in uow.tasks.for_case(case.id, open_only=True):
        drawn = ready.get(task.task_ref)
        if drawn is None or task.adhoc:
            continue
        now_drawn = {"title": drawn.title, "candidate_role": drawn.lane, "form_ref": drawn.form_ref,
                     "ui_form_ref": drawn.ui_form_ref, "instructions": drawn.instructions}
        if any(getattr(task, name) != value for name, value in now_drawn.items()):
            uow.tasks.update(replace(task, **now_drawn))


def _running_cases(uow: UnitOfWork, actor: User, process_id: str, older: dict[int, VersionLoad]) -> Iterable[Case]:
    """The actor's running cases of the older versions, up to PREVIEW_LIMIT."""
    if not any(version.running_cases for version in older.values()):
        return []
    found: list[Case] = []
    for status in RUNNING:
        offset = 0
        while len(found) < PREVIEW_LIMIT:
            page = uow.cases.list(status=status.value, process_id=process_id, settings=actor.setting_scope,
                                  limit=_PAGE, offset=offset)
            found += [case for case in page if case.process_version_id in older][:PREVIEW_LIMIT - len(found)]
            if len(page) < _PAGE:
                break
            offset += _PAGE
    return sorted(found, key=lambda case: case.id)


def _candidate(case: Case, older: dict[int, VersionLoad], **outcome) -> MigrationCandidate:
    return MigrationCandidate(case_id=case.id, subject_name=case.subject_name, subject_ref=case.subject_ref,
                              status=case.status, from_version=older[case.process_version_id].version,
                              case_version=case.version, **outcome)


def _label(version) -> VersionLabel:
    return VersionLabel(version.version, version.deployed_by, version.deployed_at)


def _element_name(bundle, element_id: str | None) -> str:
    for process_spec in (bundle.spec, *bundle.subprocess_specs.values()):
        for spec in process_spec.task_specs.values():
            if element_id and spec.bpmn_id == element_id:
                return element_name_of(spec)
    return element_id or "the step that failed"


def _require_supervisor(actor: User) -> None:
    if not is_supervisor(actor):
        raise Forbidden("Only supervisors can move running cases to another process version.")
