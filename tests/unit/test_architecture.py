"""The core stays framework-free: DESIGN §1's direction of imports, enforced."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "workflows"
FORBIDDEN = ("flask", "sqlalchemy", "marshmallow", "apscheduler", "alembic", "psycopg", "service", "werkzeug")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_the_core_module_imports_no_framework(path):
    offending = sorted(m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN)
    assert offending == [], f"{path.name} imports {offending}"


def test_the_check_would_catch_a_framework_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from flask import current_app\nimport sqlalchemy.orm\n")
    assert {m.split(".")[0] for m in imported_modules(sample)} == {"flask", "sqlalchemy"}
