"""Case state as JSON: SpiffWorkflow's serializer, without the process specs.

SpiffWorkflow's default serialization embeds the whole parsed diagram in every
workflow; a case row would carry its diagram again on every save. The specs come from
the deployed process version instead (cached per version), so the stored state holds
only the running instance: tasks, data, subprocesses, correlations. The SpiffWorkflow
serializer version is kept in the JSON, and so is ours, to migrate either later.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from uuid import UUID

from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.event_definition import (
    TimerConditionalEventDefinitionConverter,
)
from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnWorkflowConverter,
    WorkflowConverter,
)
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from .errors import CaseworkError
from .timers import CLOCKED_TIMERS

FORMAT_KEY = "casework_format"
FORMAT_VERSION = 1

_restoring_specs: ContextVar[tuple | None] = ContextVar("casework_restoring_specs", default=None)


class CaseStateError(CaseworkError):
    """Stored case state cannot be read back (corrupt, or written for another process)."""


class _CaseWorkflowConverter(BpmnWorkflowConverter):
    """Writes the spec's name only; restores with the specs of the deployed version."""

    def to_dict(self, workflow):
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["spec"] = workflow.spec.name
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct):
        specs = _restoring_specs.get()
        if specs is None:
            raise CaseStateError("Case state can only be restored together with its process specs")
        spec, subprocess_specs = specs
        stored_name = dct.pop("spec")
        if stored_name != spec.name:
            raise CaseStateError(f"Case state belongs to process '{stored_name}', not '{spec.name}'")
        dct.pop("subprocess_specs", None)
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


def _config() -> dict:
    config = dict(CAMUNDA_CONFIG)
    config.update(SPIFF_CONFIG)
    for clocked in CLOCKED_TIMERS.values():
        config[clocked] = TimerConditionalEventDefinitionConverter
    config[BpmnWorkflow] = _CaseWorkflowConverter
    return config


class CaseSerializer:
    """Turn a running workflow into JSON text and back."""

    def __init__(self):
        registry = BpmnWorkflowSerializer.configure(_config())
        # Scripts may store plain dates (today(), a form's date field); Spiff knows only datetime.
        registry.register(date, lambda value: {"value": value.isoformat()}, lambda dct: date.fromisoformat(dct["value"]))
        self._serializer = BpmnWorkflowSerializer(registry)

    @property
    def spiff_version(self) -> str:
        return self._serializer.VERSION

    @property
    def registry(self):
        """SpiffWorkflow's converter registry: specs compared through it compare as they are stored."""
        return self._serializer.registry

    def dumps(self, workflow: BpmnWorkflow) -> str:
        """Serialise a workflow (without its specs) to JSON text."""
        registry = self._serializer.registry
        registry._encoder_mode = True
        try:
            dct = self._serializer.to_dict(workflow)
        finally:
            registry._encoder_mode = False
        dct[self._serializer.VERSION_KEY] = self._serializer.VERSION
        dct[FORMAT_KEY] = FORMAT_VERSION
        return json.dumps(dct, cls=self._serializer._encoder_cls, separators=(",", ":"))

    def loads(self, text: str, spec, subprocess_specs: dict) -> BpmnWorkflow:
        """Restore a workflow from JSON text, using the given process specs."""
        try:
            dct = json.loads(text)
        except (TypeError, ValueError) as err:
            raise CaseStateError(f"Case state is not valid JSON: {err}") from err
        stored_format = dct.pop(FORMAT_KEY, None)
        if stored_format != FORMAT_VERSION:
            raise CaseStateError(f"Case state format {stored_format!r} is not supported (expected {FORMAT_VERSION})")
        with _restoring(spec, subprocess_specs):
            try:
                self._serializer.migrate(dct)
                return self._serializer.from_dict(dct)
            except CaseStateError:
                raise
            except Exception as err:
                raise CaseStateError(f"Case state cannot be restored: {type(err).__name__}: {err}") from err


@contextmanager
def _restoring(spec, subprocess_specs) -> Iterator[None]:
    token = _restoring_specs.set((spec, subprocess_specs))
    try:
        yield
    finally:
        _restoring_specs.reset(token)
