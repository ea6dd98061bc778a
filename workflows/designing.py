"""Designers' drafts: change a diagram set together, check and test it, deploy it with a note.

A draft is the working copy of one diagram set, kept in the database. Until someone saves,
there is none: readers see the set's own files of its latest deployed version (or of its
bpmn/ folder), and the first save stores the copy. Each save bumps `revision`; a save
made on an older revision is refused, naming who saved since.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from . import catalog, deployment
from .errors import Conflict, DiagramError, DiagramProblem, Forbidden, InvalidInput, NotFound
from .model import ProcessDraft, ProcessVersion, User
from .ports import UnitOfWork
from .process_tests import SuiteReport, run_diagram_tests
from .services import Services

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_DRAFT_BYTES = 20 * 1024 * 1024
MAX_NOTE_CHARS = 500
MAX_PATH_CHARS = 255
READER_ROLES = (*deployment.DEPLOYER_ROLES, "supervisor")
UPLOAD_FOLDERS = ("", "forms", "tests")
_SET_NAME = re.compile(r"[a-z0-9_]{1,64}")
_PATH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9 _.()-]*")


class StaleDraft(Conflict):
    """Someone saved the draft (or deployed or discarded it) since the designer loaded it."""

    def __init__(self, set_name: str, current: ProcessDraft | None, *, loaded: int):
        self.revision = current.revision if current else 0
        self.updated_by = current.updated_by if current else None
        self.updated_at = current.updated_at if current else None
        if current is None:
            message = (f"The {set_name} draft you loaded (revision {loaded}) is gone: it was deployed or discarded "
                       "since. Reload to start again from the deployed version.")
        else:
            message = (f"{current.updated_by} saved the {set_name} draft at {current.updated_at:%Y-%m-%d %H:%M} UTC "
                       f"(revision {current.revision}) after you loaded revision {loaded}; reload the draft to see "
                       "their change, then make yours again.")
        super().__init__(message)


def may_read(user: User | None) -> bool:
    """Tell whether the user may see the designer: its sets, drafts, versions and files."""
    return user is not None and any(user.has_role(role) for role in READER_ROLES)


def require_reader(user: User | None) -> None:
    """Refuse anyone who may not see the designer."""
    _require(may_read(user), _READERS_ONLY)


def may_write(user: User | None) -> bool:
    """Tell whether the user may change drafts and deploy them."""
    return user is not None and any(user.has_role(role) for role in deployment.DEPLOYER_ROLES)


def check_path(set_name: str, path: str) -> str:
    """Return `path` if a set's file may have it; InvalidInput saying what to change otherwise."""
    parts = path.split("/")
    reason = None
    if not path:
        reason = "give the file a name, e.g. acute_stay.bpmn."
    elif len(path) > MAX_PATH_CHARS:
        reason = f"a path may be at most {MAX_PATH_CHARS} characters long."
    elif "\\" in path or path.startswith("/") or any(part in ("", ".", "..") for part in parts):
        reason = "use a relative path with forward slashes and no '..', e.g. forms/review.schema.json."
    elif not all(_PATH_PART.fullmatch(part) for part in parts):
        reason = "use letters, digits, spaces, '_', '-', '.', '(' or ')' in file and folder names."
    elif not path.lower().endswith(catalog.SET_FILE_SUFFIXES):
        reason = "only .bpmn, .dmn, .json, .yaml and .yml files belong to a diagram set."
    elif parts[0] == catalog.LIBRARY_SET and len(parts) > 1 and set_name != catalog.LIBRARY_SET:
        reason = f"files under {catalog.LIBRARY_SET}/ belong to the library set; change them in its own draft."
    if reason:
        raise InvalidInput(f"The file '{path[:100]}' cannot be saved: {reason}", {"path": [reason]})
    return path


def check_content(path: str, content: bytes) -> None:
    """Refuse a file that is too large or not UTF-8 text."""
    if len(content) > MAX_FILE_BYTES:
        raise InvalidInput(f"{path} is {_megabytes(len(content))}; a file may be at most {_megabytes(MAX_FILE_BYTES)}.",
                           {"file": ["The file is too large."]})
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidInput(f"{path} is not UTF-8 text (byte {err.start + 1} cannot be read); save it as UTF-8.",
                           {"file": ["The file is not UTF-8 text."]}) from None


def save_file(services: Services, *, actor: User, set_name: str, path: str, content: bytes, revision: int,
              library: Sequence[catalog.DiagramSet]) -> tuple[int, list[DiagramProblem]]:
    """Save one file of the draft made on `revision`; return the new revision and the draft's problems."""
    _require(may_write(actor), _WRITERS_ONLY)
    check_path(set_name, path)
    check_content(path, content)
    with services.uow() as uow:
        draft = working_copy(uow, set_name, library, create=True)
        if draft.revision != revision:
            raise StaleDraft(set_name, draft if draft.id else None, loaded=revision)
        _store(services, uow, draft, {path: content}, actor)
        uow.commit()
    return draft.revision, draft_problems(set_name, draft.files, library)


def upload_files(services: Services, *, actor: User, set_name: str, files: Mapping[str, bytes], folder: str = "",
                 library: Sequence[catalog.DiagramSet]) -> tuple[int, list[str], list[DiagramProblem]]:
    """Add uploaded files to the draft unless they bring errors; return the revision, their paths, the problems left."""
    _require(may_write(actor), _WRITERS_ONLY)
    if folder not in UPLOAD_FOLDERS:
        raise InvalidInput("Upload into the set's top folder, forms or tests.",
                           {"folder": ["Choose '', forms or tests."]})
    if not files:
        raise InvalidInput("Choose one or more .bpmn, .dmn, .json or .yaml files to upload.", {"file": ["No file."]})
    placed: dict[str, bytes] = {}
    for name, content in files.items():
        base = name.replace("\\", "/").rsplit("/", 1)[-1]  # some browsers send the whole local path
        path = check_path(set_name, f"{folder}/{base}" if folder else base)
        check_content(path, content)
        placed[path] = content
    with services.uow(read_only=True) as uow:
        draft = working_copy(uow, set_name, library, create=True)
    # The draft's own errors elsewhere may stay; the upload must not add any.
    before = draft_problems(set_name, draft.files, library) if draft.files else []
    after = draft_problems(set_name, {**draft.files, **placed}, library)
    known = {(p.message, p.file, p.element_id) for p in before}
    brought = [p for p in after
               if p.is_error and (p.file in placed or (p.message, p.file, p.element_id) not in known)]
    if brought:
        raise DiagramError(brought)
    with services.uow() as uow:
        _store(services, uow, draft, placed, actor)
        uow.commit()
    return draft.revision, sorted(placed), after


def draft_problems(set_name: str, files: Mapping[str, bytes],
                   library: Sequence[catalog.DiagramSet]) -> list[DiagramProblem]:
    """Check the draft's files with the library processes they call; errors and warnings."""
    complete = catalog.with_dependencies(catalog.DiagramSet(set_name, files), library)
    return catalog.validate(complete)


def validate_draft(services: Services, *, actor: User, set_name: str,
                   library: Sequence[catalog.DiagramSet]) -> list[DiagramProblem]:
    """List what stops the draft from deploying, and the warnings."""
    require_reader(actor)
    with services.uow(read_only=True) as uow:
        files = working_copy(uow, set_name, library, create=False).files
    return draft_problems(set_name, files, library)


def run_draft_tests(services: Services, *, actor: User, set_name: str,
                    library: Sequence[catalog.DiagramSet]) -> SuiteReport:
    """Run the draft's process tests (tests/*.yaml) with the library; nothing is stored."""
    require_reader(actor)
    with services.uow(read_only=True) as uow:
        files = working_copy(uow, set_name, library, create=False).files
    return run_diagram_tests([catalog.DiagramSet(set_name, files)], library)


def deploy_draft(services: Services, *, actor: User, set_name: str, note: str,
                 library: Sequence[catalog.DiagramSet]) -> list[ProcessVersion]:
    """Deploy the draft as new versions of its processes, with a note; the draft is then removed."""
    _require(may_write(actor), "Only designers and administrators can deploy diagrams.")
    note = (note or "").strip()
    if not note or len(note) > MAX_NOTE_CHARS:
        reason = f"Write a deployment note saying what changed and why, in at most {MAX_NOTE_CHARS} characters."
        raise InvalidInput(reason, {"note": [reason]})
    with services.uow(read_only=True) as uow:
        draft = working_copy(uow, set_name, library, create=False)
        latest = uow.drafts.latest_version(set_name)
    diagram_set = catalog.DiagramSet(set_name, draft.files)
    if latest is not None and latest.id != draft.based_on_version_id:
        raise Conflict(f"{latest.deployed_by} deployed version {latest.version} of {latest.process_id} at "
                       f"{latest.deployed_at:%Y-%m-%d %H:%M} UTC, after this draft was started; deploying it would "
                       "undo that change. Discard the draft and make your change again on the new version.")
    if latest is not None and latest.content_hash == catalog.with_dependencies(diagram_set, library).content_hash:
        raise Conflict(f"The {set_name} draft is the same as the deployed version {latest.version} of "
                       f"{latest.process_id}; change something first, or discard the draft.")
    versions = deployment.deploy_diagram_set(services, diagram_set=diagram_set, library=library, actor=actor, note=note)
    if draft.id is not None:
        with services.uow() as uow:
            # Saved while deploying: keep that work, now on top of what was just deployed.
            if not uow.drafts.remove(draft.id, revision=draft.revision):
                uow.drafts.rebase(draft.id, based_on_version_id=max(version.id for version in versions))
            uow.commit()
    return versions


def discard_draft(services: Services, *, actor: User, set_name: str) -> None:
    """Throw the set's draft away; the deployed versions stay as they are."""
    _require(may_write(actor), _WRITERS_ONLY)
    with services.uow() as uow:
        draft = uow.drafts.get(set_name)
        if draft is None or not uow.drafts.remove(draft.id):
            raise NotFound(f"There is no draft of {set_name} to discard.")
        uow.commit()


def working_copy(uow: UnitOfWork, set_name: str, library: Sequence[catalog.DiagramSet], *,
                  create: bool) -> ProcessDraft:
    """The stored draft, else an unsaved one (revision 0) holding the files a first save starts from."""
    draft = uow.drafts.get(set_name)
    if draft is not None:
        return draft
    latest = uow.drafts.latest_version(set_name)
    folder = next((found for found in library if found.name == set_name), None)
    if latest is not None:
        files = _own_files(latest, set_name, library)
    elif folder is not None:
        files = dict(folder.files)
    elif create and _SET_NAME.fullmatch(set_name):
        files = {}
    elif create:
        raise InvalidInput(f"'{set_name[:70]}' cannot name a new diagram set: use 1-64 lower-case letters, digits "
                           "or '_', e.g. home_health.", {"set": ["Use lower-case letters, digits or '_'."]})
    else:
        raise NotFound(f"There is no diagram set '{set_name[:70]}': none is deployed, drafted or in the bpmn folder.")
    return ProcessDraft(set_name=set_name, files=files, based_on_version_id=latest.id if latest else None)


def library_as_deployed(services: Services, *, folder: Sequence[catalog.DiagramSet]) -> list[catalog.DiagramSet]:
    """The library sets as designers last deployed them; the bpmn/ folder's files where never deployed.

    Called processes come from here, so a set deployed after its library changed takes the change.
    """
    sets = []
    with services.uow(read_only=True) as uow:
        for found in folder:
            latest = uow.drafts.latest_version(found.name)
            sets.append(catalog.DiagramSet(found.name, _own_files(latest, found.name, folder)) if latest else found)
    return sets


def _own_files(version: ProcessVersion, set_name: str, library: Sequence[catalog.DiagramSet]) -> dict[str, bytes]:
    # Files under another set's folder were copied in from the library at deployment.
    borrowed = ({found.name for found in library} | {catalog.LIBRARY_SET}) - {set_name}
    return {path: content for path, content in version.files.items() if path.split("/", 1)[0] not in borrowed}


def _store(services: Services, uow: UnitOfWork, draft: ProcessDraft, changed: dict[str, bytes], actor: User) -> None:
    """Write the changed files as the next revision, or refuse naming who saved first."""
    files = {**draft.files, **changed}
    total = sum(len(content) for content in files.values())
    if total > MAX_DRAFT_BYTES:
        raise InvalidInput(f"The {draft.set_name} draft would hold {_megabytes(total)}; a draft may hold at most "
                           f"{_megabytes(MAX_DRAFT_BYTES)}. Make the files smaller.",
                           {"file": ["The draft is too large."]})
    loaded, now = draft.revision, services.clock.now()
    draft.files, draft.revision, draft.updated_by, draft.updated_at = files, loaded + 1, actor.username, now
    if draft.id is None:
        draft.created_by, draft.created_at = actor.username, now
        stored = uow.drafts.add(draft)
    else:
        stored = uow.drafts.save(draft, expected_revision=loaded, changed=changed)
    if not stored:
        raise StaleDraft(draft.set_name, uow.drafts.get(draft.set_name), loaded=loaded)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise Forbidden(message)


_READERS_ONLY = "The designer is open to designers, administrators and supervisors; your account is none of these."
_WRITERS_ONLY = "Only designers and administrators can change diagrams; supervisors may look but not edit."
