"""What designers see: the diagram sets with their version history, a draft's files and processes, exact files."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from . import catalog, diagram_xml
from .designing import require_reader, working_copy
from .errors import NotFound
from .model import ProcessDraft, ProcessVersion, User
from .ports import VersionEntry
from .services import Services


@dataclass(frozen=True)
class DraftFile:
    path: str
    kind: str  # bpmn, dmn, form, test or other
    size: int


@dataclass(frozen=True)
class DraftProcess:
    process_id: str
    name: str
    file: str


@dataclass
class DraftSummary:
    """What a designer opening a draft sees: its files and processes, and where it came from."""

    set_name: str
    revision: int  # 0: nobody has saved yet; the files are the deployed (or bpmn/ folder) ones
    updated_by: str | None
    updated_at: datetime | None
    based_on: ProcessVersion | None
    files: list[DraftFile]
    processes: list[DraftProcess]


@dataclass
class ProcessHistory:
    process_id: str
    name: str
    versions: list[VersionEntry] = field(default_factory=list)  # newest first


@dataclass
class SetOverview:
    """One diagram set on the designer's list: its processes with their versions, and its draft if any."""

    name: str
    processes: list[ProcessHistory] = field(default_factory=list)
    draft: ProcessDraft | None = None  # without its files
    in_folder: bool = False  # the bpmn/ folder has it, so a draft can start from there


def file_kind(path: str) -> str:
    """Name what a set's file is: bpmn, dmn, form, test or other."""
    lower = path.lower()
    if lower.endswith((".bpmn", ".dmn")):
        return lower.rsplit(".", 1)[1]
    if lower.endswith(".json"):
        return "form"
    return "test" if lower.startswith("tests/") and lower.endswith((".yaml", ".yml")) else "other"


def open_draft(services: Services, *, actor: User, set_name: str,
               library: Sequence[catalog.DiagramSet]) -> DraftSummary:
    """Return the set's draft, or the deployed files it would start from; nothing is written."""
    require_reader(actor)
    with services.uow(read_only=True) as uow:
        draft = working_copy(uow, set_name, library, create=False)
        based_on = uow.processes.get(draft.based_on_version_id) if draft.based_on_version_id else None
    return DraftSummary(
        set_name=set_name, revision=draft.revision, based_on=based_on, updated_by=draft.updated_by,
        updated_at=draft.updated_at,
        files=[DraftFile(path, file_kind(path), len(content)) for path, content in sorted(draft.files.items())],
        processes=[DraftProcess(process.get("id"), process.get("name") or process.get("id"), path)
                   for path, root in diagram_xml.xml_documents(draft.files, ".bpmn")
                   for process in root.iter(diagram_xml.bpmn_tag("process")) if process.get("id")],
    )


def read_draft_file(services: Services, *, actor: User, set_name: str, path: str,
                    library: Sequence[catalog.DiagramSet]) -> bytes:
    """Return one file of the set's draft, byte for byte."""
    require_reader(actor)
    with services.uow(read_only=True) as uow:
        files = working_copy(uow, set_name, library, create=False).files
    if path not in files:
        raise NotFound(f"The {set_name} draft has no file '{path[:100]}'.")
    return files[path]


def designer_overview(services: Services, *, actor: User,
                      library: Sequence[catalog.DiagramSet]) -> list[SetOverview]:
    """List every diagram set deployed, drafted or in the bpmn folder, the library set last."""
    require_reader(actor)
    with services.uow(read_only=True) as uow:
        history, drafts = uow.drafts.history(), uow.drafts.list()
    sets: dict[str, SetOverview] = {}
    for found in library:
        sets.setdefault(found.name, SetOverview(found.name)).in_folder = True
    for draft in drafts:
        sets.setdefault(draft.set_name, SetOverview(draft.set_name)).draft = draft
    processes: dict[tuple[str, str], ProcessHistory] = {}
    for entry in history:  # by setting, process and version: the last one seen is the newest
        overview = sets.setdefault(entry.setting, SetOverview(entry.setting))
        process = processes.get((entry.setting, entry.process_id))
        if process is None:
            process = processes[entry.setting, entry.process_id] = ProcessHistory(entry.process_id, entry.name)
            overview.processes.append(process)
        process.name = entry.name
        process.versions.insert(0, entry)
    return sorted(sets.values(), key=lambda overview: (overview.name == catalog.LIBRARY_SET, overview.name))


def deployed_version(services: Services, *, actor: User, version_id: int) -> ProcessVersion:
    """Return a deployed process version with its files, exactly as deployed."""
    require_reader(actor)
    with services.uow(read_only=True) as uow:
        version = uow.processes.get(version_id)
    if version is None:
        raise NotFound(f"Process version {version_id} does not exist.")
    return version


def version_file(services: Services, *, actor: User, version_id: int, path: str) -> bytes:
    """Return one file of a deployed process version, byte for byte."""
    version = deployed_version(services, actor=actor, version_id=version_id)
    if path not in version.files:
        raise NotFound(f"Version {version.version} of {version.process_id} has no file '{path[:100]}'.")
    return version.files[path]
