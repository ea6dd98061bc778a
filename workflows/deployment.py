"""Deploy diagram sets as new process versions; list what is deployed."""
from __future__ import annotations

from collections.abc import Sequence

from . import catalog
from .errors import Forbidden
from .model import ProcessVersion, User
from .services import Services

DEPLOYER_ROLES = ("designer", "admin")


def deploy_diagram_set(
    services: Services,
    *,
    diagram_set: catalog.DiagramSet,
    library: Sequence[catalog.DiagramSet] = (),
    actor: User | None,
    note: str | None = None,
    only_new: bool = False,
) -> list[ProcessVersion]:
    """Validate a diagram set and deploy each of its processes as a new version.

    `note` says what changed and why. A process whose files are unchanged since its latest
    version keeps that version (and its note). With `only_new` (the bpmn/ folder deployed at
    start-up), files deployed once before are not deployed again either: a designer's later
    version stays the latest after a restart.
    Nothing is deployed when any problem is found (DiagramError lists them all). With
    `only_new`, files whose every process was deployed before are neither parsed nor
    checked again: a restart only hashes the files and reads the versions.
    """
    if actor is not None and not any(actor.has_role(role) for role in DEPLOYER_ROLES):
        raise Forbidden("Only designers can deploy diagrams.")
    complete_set = catalog.with_dependencies(diagram_set, library)
    if only_new and (unchanged := _deployed_before(services, complete_set)) is not None:
        return unchanged
    bundles = catalog.build_bundles(complete_set)
    now = services.clock.now()
    deployed = []
    with services.uow() as uow:
        for process_id, bundle in sorted(bundles.items()):
            latest = uow.processes.latest(process_id)
            if latest is not None and (latest.content_hash == complete_set.content_hash or (
                    only_new and uow.processes.was_deployed(process_id, complete_set.content_hash))):
                deployed.append(latest)
                continue
            deployed.append(
                uow.processes.add(
                    ProcessVersion(
                        process_id=process_id,
                        version=(latest.version + 1) if latest else 1,
                        content_hash=complete_set.content_hash,
                        files=dict(complete_set.files),
                        name=bundle.name,
                        setting=diagram_set.name,
                        deployed_by=actor.username if actor else "system",
                        deployed_at=now,
                        note=note,
                    )
                )
            )
        uow.commit()
    return deployed


def _deployed_before(services: Services, complete_set: catalog.DiagramSet) -> list[ProcessVersion] | None:
    """The latest version of each of the set's processes if each was once deployed from these exact files, else None."""
    process_ids = catalog.deployable_process_ids(complete_set)
    if not process_ids:
        return None
    with services.uow(read_only=True) as uow:
        if not all(uow.processes.was_deployed(process_id, complete_set.content_hash) for process_id in process_ids):
            return None
        return [uow.processes.latest(process_id) for process_id in process_ids]


def list_process_versions(services: Services, *, process_id: str | None = None) -> list[ProcessVersion]:
    """Return deployed process versions, newest first within each process."""
    with services.uow(read_only=True) as uow:
        return uow.processes.list(process_id=process_id)
