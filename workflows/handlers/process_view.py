"""The process view for managers: per deployed process, where its running cases wait, on its diagrams."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..diagram_map import diagram_map
from ..errors import Forbidden, NotFound
from ..model import ProcessVersion, User
from ..ports import ElementLoad, UnitOfWork, VersionLoad, WaitingCase
from ..services import Services
from .common import chosen_version, deployed_versions, is_supervisor
from .diagrams import diagram_file, main_diagram

PAGE_SIZE = 50


@dataclass
class ProcessSummary:
    """A deployed process with its versions, and its running cases and open incidents across them."""

    process_id: str
    versions: list[VersionLoad]  # oldest first

    @property
    def latest(self) -> VersionLoad:
        return self.versions[-1]

    @property
    def running_cases(self) -> int:
        return sum(version.running_cases for version in self.versions)

    @property
    def open_incidents(self) -> int:
        return sum(version.open_incidents for version in self.versions)


@dataclass
class ProcessView:
    """One diagram of a process version with the load on each of its elements."""

    version: VersionLoad
    versions: list[VersionLoad]  # the ones worth choosing: the latest, and older ones with running cases
    diagram: str
    diagrams: list[str]  # every diagram the process can run through, its own first
    names: dict[str, str]  # element id -> name, for every element of the diagram
    loads: dict[str, ElementLoad]  # element id -> its load, for the elements where cases wait
    rolled_up: dict[str, list[str]] = field(default_factory=dict)  # call activity -> diagrams it stands for
    unplaced: list[str] = field(default_factory=list)  # called diagrams shown on their own view only

    @property
    def busiest(self) -> list[ElementLoad]:
        """The loaded elements, most cases first."""
        return sorted(self.loads.values(),
                      key=lambda load: (-load.cases, -load.open_incidents, self.names[load.element_id]))


@dataclass
class ElementCases:
    """A page of the cases waiting at one element of a process view."""

    view: ProcessView
    element_id: str
    items: list[WaitingCase]
    total: int
    limit: int
    offset: int

    @property
    def name(self) -> str:
        return self.view.names[self.element_id]


def list_processes(services: Services, *, actor: User) -> list[ProcessSummary]:
    """Every deployed process of a setting the supervisor covers, with its versions and running cases."""
    _require_supervisor(actor)
    with services.uow(read_only=True) as uow:
        versions = uow.process_view.versions(settings=actor.setting_scope)
    processes: dict[str, ProcessSummary] = {}
    for version in versions:
        if actor.covers(version.setting):
            processes.setdefault(version.process_id, ProcessSummary(version.process_id, [])).versions.append(version)
    return list(processes.values())


def process_view(services: Services, *, actor: User, process_id: str, version: int | None = None,
                 diagram: str | None = None) -> ProcessView:
    """Return a diagram of a process version (the latest, its own diagram by default) with the load per element."""
    with services.uow(read_only=True) as uow:
        view, shown = _view(services, uow, actor, process_id, version, diagram)
        loads = uow.process_view.load_by_element(process_version_id=view.version.process_version_id, shown=shown,
                                                 now=services.clock.now(), settings=actor.setting_scope)
    view.loads = {load.element_id: load for load in loads if load.element_id in view.names}
    return view


def process_diagram_xml(services: Services, *, actor: User, process_id: str, version: int | None = None,
                        diagram: str | None = None) -> bytes:
    """Return a diagram file of a process version as deployed."""
    with services.uow(read_only=True) as uow:
        chosen = chosen_version(_versions(uow, actor, process_id), process_id=process_id, version=version)
        stored = uow.processes.get(chosen.process_version_id)
        path = _diagram_path(stored, diagram or main_diagram(services.bundles.get(uow, stored.id), stored))
    return stored.files[path]


def element_cases(services: Services, *, actor: User, process_id: str, element_id: str, version: int | None = None,
                  diagram: str | None = None, limit: int = PAGE_SIZE, offset: int = 0) -> ElementCases:
    """Return a page of the running cases waiting at an element of a process view, longest waiting first."""
    with services.uow(read_only=True) as uow:
        view, shown = _view(services, uow, actor, process_id, version, diagram)
        if element_id not in view.names:
            raise NotFound(f"The diagram {view.diagram} of process {process_id} (version {view.version.version}) "
                           f"has no element '{element_id}'.")
        sources = sorted(source for source, target in shown.items() if target == element_id)
        query = dict(process_version_id=view.version.process_version_id, element_ids=sources,
                     settings=actor.setting_scope)
        items = uow.process_view.cases_at(**query, now=services.clock.now(), limit=limit, offset=offset)
        total = uow.process_view.count_cases_at(**query)
    return ElementCases(view=view, element_id=element_id, items=items, total=total, limit=limit, offset=offset)


def _view(services: Services, uow: UnitOfWork, actor: User, process_id: str, version: int | None,
          diagram: str | None) -> tuple[ProcessView, dict[str, str | None]]:
    """The view of a diagram of a process version, and where each waiting row's element id is drawn on it."""
    versions = _versions(uow, actor, process_id)
    chosen = chosen_version(versions, process_id=process_id, version=version)
    stored = uow.processes.get(chosen.process_version_id)
    bundle = services.bundles.get(uow, stored.id)
    main = main_diagram(bundle, stored)
    called = {name: spec.file for name, spec in bundle.subprocess_specs.items() if getattr(spec, "file", None)}
    layout = diagram_map(stored.files, main=main, process_files={**called, process_id: main})
    path = _diagram_path(stored, diagram or main)
    view = ProcessView(
        version=chosen, versions=[v for v in versions if v is versions[-1] or v is chosen or v.running_cases],
        diagram=path, diagrams=layout.files if path in layout.files else [*layout.files, path],
        names=layout.elements[path].names, loads={},
        rolled_up={call: files for call, files in layout.rolled_up(path).items() if files},
        unplaced=layout.unplaced(path),
    )
    return view, layout.shown_on(path)


def _versions(uow: UnitOfWork, actor: User, process_id: str) -> list[VersionLoad]:
    _require_supervisor(actor)
    return deployed_versions(uow, actor=actor, process_id=process_id)


def _diagram_path(stored: ProcessVersion, path: str) -> str:
    return diagram_file(stored, path, owner=f"Version {stored.version} of the process {stored.process_id}")


def _require_supervisor(actor: User) -> None:
    if not is_supervisor(actor):
        raise Forbidden("Only supervisors and managers see the process view.")
