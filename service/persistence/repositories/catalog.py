"""The process catalog: deployed diagram sets and their files."""
from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Select, insert, select

from workflows.model import ProcessVersion

from .. import tables as t
from .base import _from_row, _Repository, _values


class SqlProcessVersionRepository(_Repository):
    """Deployed diagram sets, with their files stored byte for byte."""

    def add(self, process_version: ProcessVersion) -> ProcessVersion:
        values = _values(process_version, without=("id", "files"))
        process_version.id = self._insert(t.process_version, values)
        if process_version.files:
            rows = [
                {"process_version_id": process_version.id, "path": path, "content": content}
                for path, content in process_version.files.items()
            ]
            self._connection.execute(insert(t.process_file), rows)
        return process_version

    def get(self, process_version_id: int) -> ProcessVersion | None:
        found = self._load(select(t.process_version).where(t.process_version.c.id == process_version_id))
        return found[0] if found else None

    def latest(self, process_id: str) -> ProcessVersion | None:
        statement = (
            select(t.process_version)
            .where(t.process_version.c.process_id == process_id)
            .order_by(t.process_version.c.version.desc())
            .limit(1)
        )
        found = self._load(statement)
        return found[0] if found else None

    def was_deployed(self, process_id: str, content_hash: str) -> bool:
        columns = t.process_version.c
        statement = select(columns.id).where(columns.process_id == process_id,
                                             columns.content_hash == content_hash).limit(1)
        return self._connection.execute(statement).first() is not None

    def list(self, *, process_id: str | None = None) -> list[ProcessVersion]:
        statement = select(t.process_version).order_by(t.process_version.c.process_id, t.process_version.c.version)
        if process_id is not None:
            statement = statement.where(t.process_version.c.process_id == process_id)
        return self._load(statement)

    def settings_by_process(self) -> dict[str, str]:
        """Every deployed process id with the setting of its latest version (no files read)."""
        columns = t.process_version.c
        rows = self._connection.execute(
            select(columns.process_id, columns.setting).order_by(columns.process_id, columns.version)
        )
        return {row.process_id: row.setting for row in rows}

    def _load(self, statement: Select) -> list[ProcessVersion]:
        rows = self._connection.execute(statement).all()
        if not rows:
            return []
        files: dict[int, dict[str, bytes]] = defaultdict(dict)
        file_rows = self._connection.execute(
            select(t.process_file)
            .where(t.process_file.c.process_version_id.in_([row.id for row in rows]))
            .order_by(t.process_file.c.process_version_id, t.process_file.c.path)
        )
        for file_row in file_rows:
            files[file_row.process_version_id][file_row.path] = bytes(file_row.content)
        return [_from_row(ProcessVersion, row, files=files[row.id]) for row in rows]
