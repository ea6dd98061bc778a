"""Designers' drafts of diagram sets, and the deployed history they start from."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from workflows.model import ProcessDraft, ProcessVersion
from workflows.ports import VersionEntry

from .. import tables as t
from .base import _from_row, _Repository, _values
from .catalog import SqlProcessVersionRepository


class SqlDraftRepository(_Repository):
    """One draft per diagram set; its files stored byte for byte, as deployed files are."""

    def get(self, set_name: str) -> ProcessDraft | None:
        row = self._connection.execute(select(t.process_draft).where(t.process_draft.c.set_name == set_name)).first()
        if row is None:
            return None
        files = self._connection.execute(
            select(t.draft_file.c.path, t.draft_file.c.content).where(t.draft_file.c.draft_id == row.id))
        return _from_row(ProcessDraft, row, files={path: bytes(content) for path, content in files})

    def list(self) -> list[ProcessDraft]:
        rows = self._connection.execute(select(t.process_draft).order_by(t.process_draft.c.set_name))
        return [_from_row(ProcessDraft, row) for row in rows]

    def add(self, draft: ProcessDraft) -> bool:
        try:
            # A savepoint: on PostgreSQL a failed insert would otherwise spoil the whole transaction.
            with self._connection.begin_nested():
                draft.id = self._insert(t.process_draft, _values(draft, without=("id", "files")))
                self._write_files(draft.id, draft.files)
        except IntegrityError:
            draft.id = None
            return False
        return True

    def save(self, draft: ProcessDraft, *, expected_revision: int, changed: Mapping[str, bytes]) -> bool:
        columns = t.process_draft.c
        written = self._connection.execute(
            update(t.process_draft)
            .where(columns.id == draft.id, columns.revision == expected_revision)
            .values(revision=draft.revision, updated_by=draft.updated_by, updated_at=draft.updated_at)
        )
        if written.rowcount != 1:
            return False
        if changed:
            self._connection.execute(delete(t.draft_file).where(
                t.draft_file.c.draft_id == draft.id, t.draft_file.c.path.in_(list(changed))))
            self._write_files(draft.id, changed)
        return True

    def rebase(self, draft_id: int, *, based_on_version_id: int | None) -> None:
        self._connection.execute(update(t.process_draft).where(t.process_draft.c.id == draft_id)
                                 .values(based_on_version_id=based_on_version_id))

    def remove(self, draft_id: int, *, revision: int | None = None) -> bool:
        statement = delete(t.process_draft).where(t.process_draft.c.id == draft_id)
        if revision is not None:
            statement = statement.where(t.process_draft.c.revision == revision)
        if self._connection.execute(statement).rowcount != 1:
            return False
        self._connection.execute(delete(t.draft_file).where(t.draft_file.c.draft_id == draft_id))
        return True

    def latest_version(self, set_name: str) -> ProcessVersion | None:
        newest = self._connection.execute(
            select(t.process_version.c.id).where(t.process_version.c.setting == set_name)
            .order_by(t.process_version.c.id.desc()).limit(1)
        ).scalar()
        return SqlProcessVersionRepository(self._connection).get(newest) if newest is not None else None

    def history(self) -> list[VersionEntry]:
        columns = t.process_version.c
        paths: dict[int, list[str]] = defaultdict(list)
        for version_id, path in self._connection.execute(
                select(t.process_file.c.process_version_id, t.process_file.c.path).order_by(t.process_file.c.path)):
            paths[version_id].append(path)
        rows = self._connection.execute(
            select(t.process_version).order_by(columns.setting, columns.process_id, columns.version))
        return [_from_row(VersionEntry, row, paths=tuple(paths[row.id])) for row in rows]

    def _write_files(self, draft_id: int, files: Mapping[str, bytes]) -> None:
        if files:
            self._connection.execute(insert(t.draft_file), [
                {"draft_id": draft_id, "path": path, "content": content} for path, content in files.items()])
