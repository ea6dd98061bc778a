"""Turn a set of diagram files into SpiffWorkflow process specs, collecting every problem.

SpiffWorkflow raises ValidationException for the mistakes it knows about, and
AttributeError, KeyError, TypeError ... for the rest, one at a time. `SpecCompiler`
feeds it the files one by one, catches whatever it raises and turns each failure into a
DiagramProblem naming the file, element and line, so that one bad file or process does
not hide the problems of the others.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.camunda.parser.CamundaParser import CamundaParser
from SpiffWorkflow.dmn.parser.BpmnDmnParser import SCHEMAS as DMN_SCHEMAS
from SpiffWorkflow.spiff.parser.process import SPIFF_XSD, SpiffBpmnParser

from . import diagram_xml
from .errors import DiagramProblem

logger = logging.getLogger(__name__)

SPIFF, CAMUNDA = "spiff", "camunda"
# SpiffWorkflow puts lxml reprs in messages: "<Element {namespace}targetRef at 0x7f...>".
_ELEMENT_REPR = re.compile(r"<Element (?:\{[^}]*\})?([\w.-]+) at 0x[0-9a-f]+>")
_validators = threading.local()


def choose_flavour(bpmn: Mapping[str, etree._Element]) -> str:
    """Camunda's parser for Camunda Modeler diagrams, SpiffWorkflow's for everything else."""
    roots = list(bpmn.values())
    if any(diagram_xml.uses_namespace(root, diagram_xml.CAMUNDA_NS) for root in roots) and not any(
        diagram_xml.uses_namespace(root, diagram_xml.SPIFF_NS) for root in roots
    ):
        return CAMUNDA
    return SPIFF


def _validator(key: str) -> BpmnValidator | None:
    # Building a schema takes milliseconds and lxml validators keep a shared error log,
    # so each thread builds its own once.
    cache = _validators.__dict__.setdefault("by_key", {})
    if key not in cache:
        try:
            if key == SPIFF:
                cache[key] = BpmnValidator(imports={"spiffworkflow": SPIFF_XSD})
            elif key == CAMUNDA:
                cache[key] = BpmnValidator()
            else:
                cache[key] = BpmnValidator(DMN_SCHEMAS[key])
        except Exception:
            logger.warning("XML schema for %s cannot be built; files in it are not schema-checked", key)
            cache[key] = None
    return cache[key]


class SpecCompiler:
    """The SpiffWorkflow parser for one set of files, and the specs built from it so far."""

    def __init__(self, bpmn: Mapping[str, etree._Element], dmn: Mapping[str, etree._Element]):
        self.bpmn, self.dmn = dict(bpmn), dict(dmn)
        self.flavour = choose_flavour(self.bpmn)
        self.parser = CamundaParser() if self.flavour == CAMUNDA else SpiffBpmnParser()
        self.problems: list[DiagramProblem] = []
        self.specs: dict[str, BpmnProcessSpec] = {}
        self.missing: set[str] = set()
        self._failed: set[str] = set()
        self._files_by_root = {id(root): path for path, root in {**self.bpmn, **self.dmn}.items()}
        for path, root in sorted(self.bpmn.items()):
            if self._schema_valid(path, root, _validator(self.flavour), "BPMN 2.0"):
                self._attempt(path, self.parser.add_bpmn_xml, root, filename=path)
        for path, root in sorted(self.dmn.items()):
            namespace = root.nsmap.get(None) or root.nsmap.get("dmn")
            validator = _validator(namespace) if namespace in DMN_SCHEMAS else None
            if self._schema_valid(path, root, validator, "DMN"):
                self._attempt(path, self.parser.add_dmn_xml, root, filename=path)

    def process_tree(self, process_id: str) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]] | None:
        """Build a process and everything it calls; None (with problems recorded) if any part fails."""
        reached: dict[str, BpmnProcessSpec] = {}
        complete = self._build(process_id, reached)
        if not complete or process_id not in reached:
            return None
        root = reached.pop(process_id)
        return root, reached

    def _build(self, process_id: str, reached: dict[str, BpmnProcessSpec]) -> bool:
        if process_id in reached:
            return True
        spec = self._spec(process_id)
        if spec is None:
            return False
        reached[process_id] = spec
        complete = True
        for task_spec in spec.task_specs.values():
            if isinstance(task_spec, SubWorkflowTask):
                complete = self._build(task_spec.spec, reached) and complete
        return complete

    def _spec(self, process_id: str) -> BpmnProcessSpec | None:
        if process_id in self.specs or process_id in self._failed:
            return self.specs.get(process_id)
        process_parser = self.parser.get_process_parser(process_id)
        if process_parser is None:
            # Called but never defined, or defined in a file that failed to load.
            self.missing.add(process_id)
            self._failed.add(process_id)
            return None
        try:
            # A failed parse leaves a half-built spec cached in the process parser: never ask twice.
            self.specs[process_id] = process_parser.get_spec()
        except Exception as exc:
            self._failed.add(process_id)
            self.problems.append(self.problem_from(exc, process_parser.filename))
            return None
        return self.specs[process_id]

    def _schema_valid(self, path: str, root: etree._Element, validator: BpmnValidator | None, kind: str) -> bool:
        if validator is None:
            return True
        try:
            validator.validate(root, path)
        except Exception as exc:
            message = str(exc.args[0]) if exc.args else str(exc)
            message = message.replace(f"{{{diagram_xml.BPMN_NS}}}", "bpmn:").rstrip(". ")
            line = getattr(exc, "line_number", None)
            self.problems.append(DiagramProblem(
                f"the file does not follow the {kind} schema: {message}.", path,
                line=line if isinstance(line, int) else None))
            return False
        return True

    def _attempt(self, path: str, add, root: etree._Element, **kwargs) -> None:
        try:
            add(root, **kwargs)
        except Exception as exc:
            self.problems.append(self.problem_from(exc, path))

    def problem_from(self, exc: Exception, path: str | None) -> DiagramProblem:
        """Locate whatever SpiffWorkflow raised as precisely as the exception allows."""
        element_id, line = None, None
        if isinstance(exc, ValidationException):
            message = str(exc.args[0]) if exc.args else type(exc).__name__
            path = exc.file_name or path
            element_id = exc.id or None
            line = exc.line_number if isinstance(exc.line_number, int) else None
        else:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            message = f"SpiffWorkflow cannot parse this element ({detail})"
        if element_id is None and (element := _element_in_traceback(exc)) is not None:
            element_id, line = element.get("id"), element.sourceline
            path = self._files_by_root.get(id(element.getroottree().getroot()), path)
        if element_id and (line is None or not path):
            path, line = self._locate(path, element_id, line)
        message = _ELEMENT_REPR.sub(_short_tag, " ".join(message.split())).rstrip(". ")
        return DiagramProblem(f"{message}.", path or None, element_id, line)

    def _locate(self, path: str | None, element_id: str, line: int | None) -> tuple[str | None, int | None]:
        candidates = [path] if path in self.bpmn or path in self.dmn else sorted({**self.bpmn, **self.dmn})
        for candidate in candidates:
            root = self.bpmn.get(candidate, self.dmn.get(candidate))
            found = root.xpath("//*[@id=$element_id]", element_id=element_id)
            if found:
                return candidate, line if line is not None else found[0].sourceline
        return path, line


def _short_tag(match: re.Match) -> str:
    return f"'{match.group(1)}'"


def _element_in_traceback(exc: BaseException) -> etree._Element | None:
    """The innermost XML element a failing SpiffWorkflow frame was working on."""
    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        local = frame.f_locals
        for named in (local.get("node"), getattr(local.get("self"), "node", None)):
            if isinstance(named, etree._Element) and named.get("id"):
                return named
        elements = [value for value in local.values() if isinstance(value, etree._Element) and value.get("id")]
        if elements:
            return max(elements, key=lambda element: sum(1 for _ in element.iterancestors()))
    return None


def connect_loop_merges(specs: list[BpmnProcessSpec]) -> None:
    """Let every loop and multi-instance collect the instances of a case made before these specs were parsed.

    SpiffWorkflow connects an instance's spec to its loop only when it creates an instance, so
    a case reloaded on freshly parsed specs (after a restart, a cache eviction or a migration)
    would otherwise never gather its running instances and stall.
    """
    for process_spec in specs:
        for loop in process_spec.task_specs.values():
            instance = process_spec.task_specs.get(loop.task_spec) if isinstance(loop, LoopTask) else None
            if instance is not None and not instance.completed_event.is_connected(loop.merge_child):
                instance.completed_event.connect(loop.merge_child)
