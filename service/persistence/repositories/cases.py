"""Cases, their audit trail, and the incidents recorded against them."""
from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update

from workflows.errors import StaleCase
from workflows.model import Case, CaseEvent, CaseStatus, Incident, IncidentStatus, Note

from .. import tables as t
from .base import _from_row, _Repository, _update, _values


_SAVE_CASE = update(t.case_record).where(
    t.case_record.c.id == bindparam("_id"), t.case_record.c.version == bindparam("_expected")
)
_insert_event = insert(t.case_event)
_EVENTS_OF_CASE = select(t.case_event).where(t.case_event.c.case_id == bindparam("case_id")).order_by(t.case_event.c.id)


def _case(row) -> Case:
    return _from_row(Case, row, status=CaseStatus)


class SqlCaseRepository(_Repository):
    """Cases, written with an optimistic version check so no update is ever lost."""

    def add(self, case: Case) -> Case:
        case.id = self._insert(t.case_record, _values(case))
        return case

    def get(self, case_id: int) -> Case | None:
        return self._get(t.case_record, case_id, _case)

    def save(self, case: Case) -> None:
        """Write the case if its stored version is still `case.version`, and bump the version."""
        expected = case.version
        values = _values(case, without=("id", "version")) | {"version": expected + 1, "_id": case.id, "_expected": expected}
        result = self._connection.execute(_SAVE_CASE, values)
        if result.rowcount != 1:
            raise StaleCase(f"Case {case.id} was changed by someone else; reload it and try again.")
        case.version = expected + 1

    def list(
        self, *, status: str | None = None, process_id: str | None = None, limit: int = 50, offset: int = 0,
        settings: list[str] | None = None,
    ) -> list[Case]:
        statement = select(t.case_record)
        if settings is not None:
            statement = statement.where(t.case_record.c.setting.in_(settings))
        if status is not None:
            statement = statement.where(t.case_record.c.status == str(status))
        if process_id is not None:
            statement = statement.where(t.case_record.c.process_id == process_id)
        statement = statement.order_by(t.case_record.c.opened_at.desc(), t.case_record.c.id.desc())
        return [_case(row) for row in self._connection.execute(statement.limit(limit).offset(offset))]


class SqlCaseEventRepository(_Repository):
    """The audit trail. Append-only on purpose: there is no way here to change or remove an event.

    Appended events are written together, in one statement, when the unit of work
    commits (or before the trail is read): one action often appends several.
    """

    def __init__(self, connection):
        super().__init__(connection)
        self._appended: list[CaseEvent] = []

    def append(self, event: CaseEvent) -> CaseEvent:
        self._appended.append(event)
        return event

    def flush(self) -> None:
        """Write the events appended since the last flush."""
        if self._appended:
            appended, self._appended = self._appended, []
            # Without RETURNING, so both drivers send them as one batch; nothing needs their ids.
            self._connection.execute(_insert_event, [_values(event) for event in appended])

    def discard(self) -> None:
        """Forget the events appended since the last flush (the transaction is rolled back)."""
        self._appended = []

    def for_case(self, case_id: int) -> list[CaseEvent]:
        self.flush()
        return [_from_row(CaseEvent, row) for row in self._connection.execute(_EVENTS_OF_CASE, {"case_id": case_id})]


def _incident(row) -> Incident:
    return _from_row(Incident, row, status=IncidentStatus)


class SqlIncidentRepository(_Repository):
    """Failures recorded against a case, and how they were resolved."""

    def add(self, incident: Incident) -> Incident:
        incident.id = self._insert(t.incident, _values(incident))
        return incident

    def get(self, incident_id: int) -> Incident | None:
        return self._get(t.incident, incident_id, _incident)

    def update(self, incident: Incident) -> None:
        _update(self._connection, t.incident, incident, "Incident")

    def for_case(self, case_id: int, *, open_only: bool = True) -> list[Incident]:
        statement = select(t.incident).where(t.incident.c.case_id == case_id)
        if open_only:
            statement = statement.where(t.incident.c.status == IncidentStatus.OPEN.value)
        return [_incident(row) for row in self._connection.execute(statement.order_by(t.incident.c.id))]


_NOTES_OF_CASE = (select(t.note).where(t.note.c.case_id == bindparam("case_id"))
                  .order_by(t.note.c.at.desc(), t.note.c.id.desc()))


class SqlNoteRepository(_Repository):
    """Case managers' notes on a case."""

    def add(self, note: Note) -> Note:
        note.id = self._insert(t.note, _values(note))
        return note

    def for_case(self, case_id: int) -> list[Note]:
        return [_from_row(Note, row) for row in self._connection.execute(_NOTES_OF_CASE, {"case_id": case_id})]
