"""Describe a SpiffWorkflow failure in plain words, naming the element that failed."""
from __future__ import annotations

from SpiffWorkflow.exceptions import WorkflowException

from .errors import EngineFailure


def engine_failure(err: Exception, kind: str) -> EngineFailure:
    """Describe a SpiffWorkflow failure in plain words, naming the element."""
    task = getattr(err, "task", None)
    spec = task.task_spec if task is not None else getattr(err, "task_spec", None)
    element_id = getattr(spec, "bpmn_id", None) or getattr(spec, "name", None)
    element_name = getattr(spec, "bpmn_name", None) or element_id
    spec_type = type(spec).__name__ if spec is not None else ""
    if "BusinessRule" in spec_type:
        kind = "decision"
    elif "Script" in spec_type:
        kind = "script"
    cause = err.__context__ if isinstance(err, WorkflowException) and err.__context__ is not None else None
    detail = str(err)
    if cause is not None and str(cause) and str(cause) not in detail:
        detail = f"{detail}: {type(cause).__name__}: {cause}"
    where = f"'{element_name}' ({element_id})" if element_id and element_name != element_id else f"'{element_id}'"
    message = f"{kind.capitalize()} failed at {where}: {detail}" if element_id else f"{kind.capitalize()} failed: {detail}"
    return EngineFailure(
        message,
        kind=kind,
        element_id=element_id,
        task_ref=str(task.id) if task is not None else None,
        line=getattr(err, "line_number", None) or None,
        details={"error_type": type(cause or err).__name__},
    )
