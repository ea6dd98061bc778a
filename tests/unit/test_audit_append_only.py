"""The audit trail only grows: no application code updates or deletes a case event or a case read.

The database refuses both as well (triggers of migration 0006): tests/integration/test_cli_audit.py
shows an attempt through the application's own connection failing with a clear error.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
AUDIT_TABLES = ("case_event", "case_read")
# Migrations create the tables and their triggers; they are the schema's, not the application's.
SCANNED = sorted(path for folder in ("service", "workflows") for path in (REPO / folder).rglob("*.py")
                 if "migrations" not in path.relative_to(REPO).parts)
RAW_CHANGE = re.compile(
    r"\b(?:UPDATE\s+(?:ONLY\s+)?|DELETE\s+FROM\s+(?:ONLY\s+)?|TRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?|"
    r"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?|ALTER\s+TABLE\s+(?:ONLY\s+)?)[\"'`]?(?:\w+\.)?(case_event|case_read)\b",
    re.IGNORECASE,
)
CHANGING_CALLS = ("update", "delete", "_update", "_update_by_id", "truncate")


def _names_audit_table(node: ast.AST) -> bool:
    """Whether the expression mentions an audit table: t.case_event, case_read, "case_event" ..."""
    for part in ast.walk(node):
        if isinstance(part, ast.Attribute) and part.attr in AUDIT_TABLES:
            return True
        if isinstance(part, ast.Name) and part.id in AUDIT_TABLES:
            return True
        if isinstance(part, ast.Constant) and part.value in AUDIT_TABLES:
            return True
    return False


def changes_to_audit_tables(source: str, filename: str = "<source>") -> list[str]:
    """Every statement in the source that would change or remove rows of an audit table, by line."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
            if name not in CHANGING_CALLS:
                continue
            # update(t.case_event), delete(case_read), _update(connection, t.case_event, ...)
            if any(_names_audit_table(argument) for argument in [*node.args, *(k.value for k in node.keywords)]):
                found.append(f"line {node.lineno}: {ast.unparse(node)[:120]}")
            # t.case_event.update(), case_read.delete()
            elif isinstance(function, ast.Attribute) and _names_audit_table(function.value):
                found.append(f"line {node.lineno}: {ast.unparse(node)[:120]}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_CHANGE.search(node.value):
            found.append(f"line {node.lineno}: SQL {node.value.strip()[:120]!r}")
    return found


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: str(p.relative_to(REPO)))
def test_no_application_code_changes_or_removes_audit_rows(path):
    found = changes_to_audit_tables(path.read_text(encoding="utf-8"), str(path))
    assert found == [], f"{path.relative_to(REPO)} changes the append-only audit trail: {found}"


def test_the_scan_covers_the_repositories_and_the_core():
    scanned = {str(path.relative_to(REPO)) for path in SCANNED}
    assert {"service/persistence/repositories/cases.py", "service/persistence/repositories/audit.py",
            "workflows/audit.py", "workflows/handlers/common.py"} <= scanned
    assert "service/web/migrations.py" in scanned  # moving cases between versions is application code
    assert not any(path.startswith("service/persistence/migrations/") for path in scanned)


@pytest.mark.parametrize("source", [
    "update(t.case_event).where(t.case_event.c.id == 1).values(actor='x')",
    "delete(t.case_read).where(t.case_read.c.case_id == 3)",
    "t.case_event.update().values(kind='x')",
    "case_read.delete()",
    "_update(self._connection, t.case_event, event, 'Event')",
    "connection.execute(text('UPDATE case_event SET actor = :a'))",
    "connection.execute(text('delete from \"case_read\" where id = 1'))",
    "op.execute('TRUNCATE TABLE case_read')",
    "sql = 'DROP TABLE IF EXISTS case_event'",
], ids=["update()", "delete()", "table.update()", "table.delete()", "_update helper", "raw UPDATE",
        "raw DELETE", "raw TRUNCATE", "raw DROP"])
def test_the_scan_catches_a_change_to_an_audit_table(source):
    assert changes_to_audit_tables(source) != []


@pytest.mark.parametrize("source", [
    "insert(t.case_event)",
    "select(t.case_read).where(t.case_read.c.case_id == 3)",
    "update(t.case_record).where(t.case_record.c.id == 1)",
    "delete(t.case_flag).where(t.case_flag.c.case_id == case_id)",
    "payload.update(kind='note_added')",
    "'SELECT * FROM case_event WHERE case_id = 1'",
], ids=["insert", "select", "other table update", "other table delete", "dict.update", "raw SELECT"])
def test_the_scan_leaves_reads_inserts_and_other_tables_alone(source):
    assert changes_to_audit_tables(source) == []
