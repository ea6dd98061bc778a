"""A case's diagrams as deployed, with what each element is doing now."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import NotFound
from ..model import ProcessVersion, User
from ..services import Services
from .common import visible_case


@dataclass
class CaseDiagram:
    """One BPMN file of a case's process version, and the marks to draw on it."""

    path: str
    xml: bytes
    process_id: str
    completed: list[str] = field(default_factory=list)
    active: dict[str, int] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)
    errored: dict[str, str] = field(default_factory=dict)  # element id -> the open incident's message
    paths: list[str] = field(default_factory=list)  # every file the case has run through, main one first

    def marks(self) -> dict:
        """The marks as the diagram viewer reads them."""
        return {"process_id": self.process_id, "completed": self.completed, "active": self.active,
                "errored": self.errored, "waiting": self.waiting}


def case_diagram(services: Services, *, actor: User | None, case_id: int, path: str | None = None) -> CaseDiagram:
    """Return a diagram file of a case the actor may see (its main process's by default), marked."""
    with services.uow(read_only=True) as uow:
        case, version, bundle = _case_files(services, uow, actor, case_id)
        incidents = uow.incidents.for_case(case_id, open_only=True)
    main = main_diagram(bundle, version)
    path = diagram_file(version, path or main, owner=f"Case {case_id}'s process")
    marks = services.engine.resume(bundle, case.state).element_marks()
    found = marks.get(path)
    done = (case.elements_done or {})
    active, waiting = (dict(found.active), set(found.waiting)) if found else ({}, set())
    # The engine keeps only unfinished history; what finished earlier is on the case record.
    completed = (set(found.completed) if found else set()) | set(done.get(path, ()))
    return CaseDiagram(
        path=path, xml=version.files[path], process_id=case.process_id,
        completed=sorted(completed - set(active) - waiting), active=active, waiting=sorted(waiting),
        errored={i.element_id: i.message for i in incidents if i.element_id},
        paths=[main, *sorted(p for p in set(marks) | set(done) if p != main and p in version.files)],
    )


def case_diagram_xml(services: Services, *, actor: User | None, case_id: int, path: str | None = None) -> bytes:
    """Return a diagram file of a case the actor may see, as deployed: no marks, so the case is not run."""
    with services.uow(read_only=True) as uow:
        _, version, bundle = _case_files(services, uow, actor, case_id)
    path = diagram_file(version, path or main_diagram(bundle, version), owner=f"Case {case_id}'s process")
    return version.files[path]


def _case_files(services: Services, uow, actor: User | None, case_id: int):
    case = visible_case(uow, actor, case_id)
    return case, uow.processes.get(case.process_version_id), services.bundles.get(uow, case.process_version_id)


def main_diagram(bundle, version: ProcessVersion) -> str:
    """The diagram file defining a version's own process (its first BPMN file if the parser did not say)."""
    return getattr(bundle.spec, "file", None) or next(p for p in sorted(version.files) if p.endswith(".bpmn"))


def diagram_file(version: ProcessVersion, path: str, *, owner: str) -> str:
    """Return `path` if it is one of the version's BPMN files; NotFound naming the `owner` otherwise."""
    if path not in version.files or not path.lower().endswith(".bpmn"):
        raise NotFound(f"{owner} has no diagram file '{path}'.")
    return path
