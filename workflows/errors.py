"""Every failure the core can report, typed.

Entry points map these to HTTP status codes or exit codes in one place each; the
message of every error is a plain sentence a designer or case manager can act on.
"""
from __future__ import annotations

from dataclasses import dataclass, field


class CaseworkError(Exception):
    """Base of every error the core raises on purpose."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class DiagramProblem:
    """One thing wrong with a diagram set, located as precisely as we can.

    An error stops the set from deploying; a warning is reported and the set still deploys.
    """

    message: str
    file: str | None = None
    element_id: str | None = None
    line: int | None = None
    severity: str = ERROR

    @property
    def is_error(self) -> bool:
        """Tell whether this problem stops the set from deploying."""
        return self.severity == ERROR

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.element_id:
            where.append(f"element '{self.element_id}'")
        if self.line:
            where.append(f"line {self.line}")
        prefix = ", ".join(where)
        message = self.message if self.is_error else f"warning: {self.message}"
        return f"{prefix}: {message}" if prefix else message


class DiagramError(CaseworkError):
    """A diagram set cannot be parsed, validated or deployed."""

    def __init__(self, problems: list[DiagramProblem] | DiagramProblem | str):
        if isinstance(problems, str):
            problems = [DiagramProblem(problems)]
        elif isinstance(problems, DiagramProblem):
            problems = [problems]
        # Warnings never stop a deployment, so the error carries only the errors.
        self.problems = [p for p in problems if p.is_error]
        if not self.problems:
            raise ValueError("A DiagramError needs at least one error; warnings alone never stop a set.")
        super().__init__("; ".join(str(p) for p in self.problems))


class NotFound(CaseworkError):
    """A case, task, process or user that was asked for does not exist (or is not visible)."""


class Conflict(CaseworkError):
    """The action clashes with the current state (already completed, claimed by someone else, stale version)."""


class StaleCase(Conflict):
    """Another writer changed the case first; reload and try again."""


class InvalidInput(CaseworkError):
    """Submitted data is wrong; `field_errors` maps a field path to what is wrong with it."""

    def __init__(self, message: str, field_errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.field_errors = field_errors or {}


class Forbidden(CaseworkError):
    """The acting user may not do this."""


@dataclass
class EngineFailure(CaseworkError):
    """Running the diagram failed: a script, expression, decision, timer or message went wrong.

    The service turns this into an incident on the case; the case state is not changed.
    """

    message: str
    kind: str = "script"
    element_id: str | None = None
    task_ref: str | None = None
    line: int | None = None
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class ScriptRejected(CaseworkError):
    """A script or expression uses something the sandbox forbids, or ran too long."""


class StalledCase(EngineFailure):
    """The case is active but has nothing ready and nothing waiting: it would go quiet."""


class MigrationRefused(Conflict):
    """A running case cannot move onto another process version safely; the message names the step in the way."""
