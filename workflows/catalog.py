"""Find, check and parse the diagram sets designers keep under bpmn/.

A diagram set is a folder: `*.bpmn`, `*.dmn`, `forms/*.schema.json` (+ `*.uischema.json`)
and `tests/*.yaml`. `bpmn/common/` holds processes other sets call; `with_dependencies`
copies what a set needs from it. `validate` lists a set's errors and warnings (the rules
are in lint_rules.py); `build_bundles` refuses a set with every error found, while warnings
never stop it; `bundle_from_files` rebuilds one deployed process from its stored files,
without the deployment checks, so a running case always reloads.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec

from . import diagram_xml, lint, lint_rules
from .compiler import SpecCompiler, connect_loop_merges
from .errors import DiagramError, DiagramProblem
from .timers import install_clocked_timers

logger = logging.getLogger(__name__)

LIBRARY_SET = "common"  # processes and decisions other sets call
SET_FILE_SUFFIXES = (".bpmn", ".dmn", ".json", ".yaml", ".yml")
_BUNDLE_CACHE_SIZE = 128
_bundle_cache: OrderedDict[tuple[str, str], ProcessBundle] = OrderedDict()
_bundle_cache_lock = threading.Lock()


def _content_hash(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        data = files[path]
        digest.update(path.encode("utf-8") + b"\0" + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class DiagramSet:
    """The files of one diagram set, by relative path (forward slashes)."""

    name: str
    files: Mapping[str, bytes] = field(hash=False)
    # Paths `with_dependencies` copied in from library sets: their processes are not deployed.
    dependency_files: frozenset[str] = frozenset()

    def __post_init__(self):
        # A private copy, so the content hash cannot go stale under the caller's feet.
        object.__setattr__(self, "files", dict(self.files))
        object.__setattr__(self, "dependency_files", frozenset(self.dependency_files))

    @cached_property
    def content_hash(self) -> str:
        """sha256 over the sorted (path, bytes) pairs."""
        return _content_hash(self.files)


@dataclass
class ProcessBundle:
    """A deployable process, parsed: what the engine needs to start and reload its cases."""

    process_id: str
    name: str
    spec: BpmnProcessSpec
    subprocess_specs: dict[str, BpmnProcessSpec]
    forms: dict[str, dict]
    flavour: str


def read_diagram_set(path: Path, *, name: str | None = None) -> DiagramSet:
    """Read a diagram set folder: its BPMN, DMN, form and process-test files."""
    folder = Path(path)
    if not folder.is_dir():
        raise DiagramError(DiagramProblem(f"{folder} is not a folder of diagrams."))
    files = {}
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder)
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        if file.is_file() and file.suffix.lower() in SET_FILE_SUFFIXES:
            files[relative.as_posix()] = file.read_bytes()
    return DiagramSet(name=name or folder.resolve().name, files=files)


def find_diagram_sets(root: Path) -> list[DiagramSet]:
    """Read every diagram set under a folder (or the folder itself if it holds diagrams)."""
    root = Path(root)
    if not root.is_dir():
        return []
    if any(root.glob("*.bpmn")):
        return [read_diagram_set(root)]
    folders = [sub for sub in root.iterdir() if sub.is_dir() and not sub.name.startswith(".")]
    return sorted((read_diagram_set(sub) for sub in folders if any(sub.rglob("*.bpmn"))), key=lambda s: s.name)


def with_dependencies(diagram_set: DiagramSet, library: Sequence[DiagramSet]) -> DiagramSet:
    """Add the library files defining processes and decisions the set calls but lacks."""
    files, added = dict(diagram_set.files), set(diagram_set.dependency_files)
    providers: dict[tuple[str, str], tuple[DiagramSet, str]] | None = None
    while missing := diagram_xml.references(files) - diagram_xml.definitions(files):
        if providers is None:
            providers = _library_providers(diagram_set.name, library)
        new = {providers[key] for key in missing if key in providers}
        new = sorted(((lib, path) for lib, path in new if f"{lib.name}/{path}" not in files),
                     key=lambda found: (found[0].name, found[1]))
        if not new:
            break
        for lib, path in new:
            for copied in [path, *diagram_xml.form_files(lib.files, path)]:
                if f"{lib.name}/{copied}" not in files:
                    files[f"{lib.name}/{copied}"] = lib.files[copied]
                    added.add(f"{lib.name}/{copied}")
    if added == set(diagram_set.dependency_files):
        return diagram_set
    return DiagramSet(diagram_set.name, files, frozenset(added))


def _library_providers(name: str, library: Sequence[DiagramSet]) -> dict[tuple[str, str], tuple[DiagramSet, str]]:
    """Which library file defines each process and decision (the first library set wins)."""
    providers: dict[tuple[str, str], tuple[DiagramSet, str]] = {}
    for lib in library:
        if lib.name == name:
            continue
        for path in sorted(lib.files):
            for key in diagram_xml.definitions({path: lib.files[path]}):
                providers.setdefault(key, (lib, path))
    return providers


def build_bundles(diagram_set: DiagramSet) -> dict[str, ProcessBundle]:
    """Check and parse a diagram set: one bundle per deployable process, or DiagramError with every error."""
    bundles, problems = _checked(diagram_set)
    if any(problem.is_error for problem in problems):
        raise DiagramError(problems)
    return bundles


def deployable_process_ids(diagram_set: DiagramSet) -> list[str]:
    """The processes `build_bundles` would deploy, from the XML alone (nothing checked); [] if any file is unreadable."""
    bpmn, dmn, problems = _parse_documents(diagram_set.files)
    return [] if problems else _deployable(lint.DiagramIndex.of(bpmn, dmn), diagram_set.dependency_files)


def validate(diagram_set: DiagramSet) -> list[DiagramProblem]:
    """List a set's errors (which stop it from deploying), then its warnings; [] when it has neither."""
    return _checked(diagram_set)[1]


def _checked(diagram_set: DiagramSet) -> tuple[dict[str, ProcessBundle], list[DiagramProblem]]:
    try:
        bundles, problems = _check_and_build(diagram_set)
    except Exception as exc:
        logger.exception("Unexpected failure while checking diagram set %s", diagram_set.name)
        return {}, [DiagramProblem(f"the diagrams could not be checked ({type(exc).__name__}: {exc}).")]
    if not any(problem.is_error for problem in problems):
        for process_id, bundle in bundles.items():
            _remember((diagram_set.content_hash, process_id), bundle)
    return bundles, lint_rules.in_report_order(problems)


def _check_and_build(diagram_set: DiagramSet) -> tuple[dict[str, ProcessBundle], list[DiagramProblem]]:
    bpmn, dmn, problems = _parse_documents(diagram_set.files)
    compiler = SpecCompiler(bpmn, dmn)
    index = lint.DiagramIndex.of(bpmn, dmn)
    problems += lint_rules.check_diagram_set(files=diagram_set.files, dependency_files=diagram_set.dependency_files,
                                             bpmn=bpmn, dmn=dmn, index=index, flavour=compiler.flavour)
    trees = {process_id: compiler.process_tree(process_id)
             for process_id in _deployable(index, diagram_set.dependency_files)}
    problems += _without_repeats(compiler.problems, [p for p in problems if p.is_error], bpmn)
    bundles = {}
    for process_id, tree in trees.items():
        if tree is None:
            if not any(problem.is_error for problem in problems):
                problems.append(DiagramProblem(f"process '{process_id}' could not be built."))
            continue
        bundles[process_id], clashes = _bundle(process_id, *tree, diagram_set.files, compiler.flavour)
        problems += clashes
    return bundles, problems


def bundle_from_files(process_id: str, files: Mapping[str, bytes]) -> ProcessBundle:
    """Rebuild a deployed process from the files stored with its version.

    Bundles are cached by content hash and process id and shared between callers: treat
    them as read-only.
    """
    key = (_content_hash(files), process_id)
    with _bundle_cache_lock:
        if key in _bundle_cache:
            _bundle_cache.move_to_end(key)
            return _bundle_cache[key]
    try:
        bpmn, dmn, problems = _parse_documents(files)
        compiler = SpecCompiler(bpmn, dmn)
        tree = compiler.process_tree(process_id)
        if tree is not None:
            bundle, _ = _bundle(process_id, *tree, files, compiler.flavour)
    except Exception as exc:
        logger.exception("Unexpected failure while rebuilding process %s", process_id)
        raise DiagramError(DiagramProblem(f"process '{process_id}' could not be rebuilt ({type(exc).__name__}).")) from exc
    if tree is None:
        missing = [DiagramProblem(f"process '{missing}' is not defined in these files.")
                   for missing in sorted(compiler.missing)]
        raise DiagramError(problems + compiler.problems + missing
                           or [DiagramProblem(f"process '{process_id}' could not be rebuilt.")])
    _remember(key, bundle)
    return bundle


def user_task_form(bundle: ProcessBundle, task_spec) -> tuple[str | None, str | None]:
    """The (JSON schema, UI schema) form file names of a user task, each None if it has none."""
    properties = (getattr(task_spec, "extensions", None) or {}).get("properties")
    if not isinstance(properties, dict):
        return None, None
    names = (properties.get(diagram_xml.FORM_SCHEMA_PROPERTY), properties.get(diagram_xml.FORM_UI_SCHEMA_PROPERTY))
    return tuple(name if name in bundle.forms else None for name in names)


def _parse_documents(files: Mapping[str, bytes]):
    bpmn, dmn, problems = {}, {}, []
    for path in sorted(files):
        kind = bpmn if path.lower().endswith(".bpmn") else dmn if path.lower().endswith(".dmn") else None
        if kind is not None:
            root, problem = diagram_xml.parse_xml(path, files[path])
            if problem is not None:
                problems.append(problem)
            else:
                kind[path] = root
    return bpmn, dmn, problems


def _deployable(index: lint.DiagramIndex, dependency_files: frozenset[str]) -> list[str]:
    """Executable processes of the set's own files that no other process calls."""
    executable = sorted({process_id for process_id, places in index.processes.items()
                         for path, process in places
                         if path not in dependency_files and diagram_xml.is_executable(process)})
    called = {call.called for call in index.calls if call.called != call.caller}
    return [process_id for process_id in executable if process_id not in called] or executable


def _without_repeats(found: list[DiagramProblem], known: list[DiagramProblem], bpmn) -> list[DiagramProblem]:
    """Drop SpiffWorkflow's report of an element the catalog's own checks already explained."""
    explained = set()
    for problem in known:
        if problem.element_id and problem.file in bpmn:
            explained.add((problem.file, problem.element_id))
            # SpiffWorkflow blames a dangling sequence flow on the element it leaves.
            for flow in bpmn[problem.file].iter(diagram_xml.bpmn_tag("sequenceFlow")):
                if flow.get("id") == problem.element_id:
                    explained.add((problem.file, flow.get("sourceRef")))
    kept = []
    for problem in found:
        if (problem.file, problem.element_id) not in explained and problem not in kept:
            kept.append(problem)
    return kept


def _bundle(process_id, spec, subprocess_specs, files, flavour) -> tuple[ProcessBundle, list[DiagramProblem]]:
    install_clocked_timers([spec, *subprocess_specs.values()])
    connect_loop_merges([spec, *subprocess_specs.values()])
    forms, clashes = _forms(process_id, [spec, *subprocess_specs.values()], files)
    bundle = ProcessBundle(process_id=process_id, name=spec.description or process_id, spec=spec,
                           subprocess_specs=subprocess_specs, forms=forms, flavour=flavour)
    return bundle, clashes


def _forms(process_id: str, specs: list[BpmnProcessSpec], files: Mapping[str, bytes]):
    """The forms the process's tasks name, by the name they give; clashing names are problems."""
    forms, paths, clashes = {}, {}, []
    for process_spec in specs:
        for task_spec in process_spec.task_specs.values():
            properties = (getattr(task_spec, "extensions", None) or {}).get("properties")
            for prop in (diagram_xml.FORM_SCHEMA_PROPERTY, diagram_xml.FORM_UI_SCHEMA_PROPERTY):
                name = properties.get(prop) if isinstance(properties, dict) else None
                path = diagram_xml.resolve_form(files, process_spec.file or "", name) if name else None
                if path is None:
                    continue
                if paths.setdefault(name, path) != path:
                    clashes.append(DiagramProblem(
                        f"form name '{name}' means both {paths[name]} and {path} in process '{process_id}'; "
                        "give the forms different names.", process_spec.file, task_spec.bpmn_id))
                elif name not in forms:
                    try:
                        forms[name] = json.loads(files[path].decode("utf-8-sig"))
                    except ValueError:
                        logger.warning("Form %s of process %s is not valid JSON", path, process_id)
    return forms, clashes


def _remember(key: tuple[str, str], bundle: ProcessBundle) -> None:
    with _bundle_cache_lock:
        _bundle_cache[key] = bundle
        _bundle_cache.move_to_end(key)
        while len(_bundle_cache) > _BUNDLE_CACHE_SIZE:
            _bundle_cache.popitem(last=False)
