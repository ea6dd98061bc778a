"""`casework validate`: every corpus file deploys or is refused with a clear message, and never a traceback."""
from __future__ import annotations

import io
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from tests.conformance.test_conformance_corpus import (
    CORPUS,
    DEPLOYABLE,
    EXPECTED,
    EXPECTED_WARNINGS,
    NESTED,
    REJECTED,
    SETS,
)
from workflows import catalog

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def validate(tmp_path, monkeypatch):
    """Run `casework validate ARGS` with an empty library folder; return (exit code, all output)."""
    monkeypatch.setenv("CASEWORK_BPMN_PATH", str(tmp_path / "no_library"))
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, ["validate", *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
        return result.exit_code, result.output
    return run


def corpus_folder(name: str, into: Path) -> Path:
    """The corpus set as the corpus test builds it: the file with its sibling DMNs, or the nested folder."""
    if name == NESTED:
        return CORPUS / NESTED
    folder = into / Path(name).stem
    folder.mkdir()
    for path in SETS[name].files:
        shutil.copyfile((CORPUS / name).parent / path, folder / path)
    return folder


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_corpus_file_is_accepted_or_refused_as_expected(validate, tmp_path, name):
    folder = corpus_folder(name, tmp_path)
    code, output = validate(str(folder))
    outcome, detail = EXPECTED[name]
    warnings = sum(EXPECTED_WARNINGS.get(name, {}).values())
    assert "Traceback" not in output
    if outcome == DEPLOYABLE:
        assert code == 0, output
        assert output.splitlines()[0] == (f"{folder.name}: 0 error(s), {warnings} warning(s)" if warnings
                                          else f"{folder.name}: ok")
        assert output.count(": warning: ") == warnings
    else:
        assert outcome == REJECTED and code == 1, output
        errors = sum(p.is_error for p in catalog.validate(SETS[name]))
        assert output.splitlines()[0] == f"{folder.name}: {errors} error(s), {warnings} warning(s)"
        assert detail in output


def test_strict_also_fails_on_warnings(validate, tmp_path):
    folder = corpus_folder("spiffworkflow/bpmn/exclusive_gateway_no_default.bpmn", tmp_path)
    assert validate(str(folder))[0] == 0
    code, output = validate("--strict", str(folder))
    assert code == 1 and "warning: exclusive gateway has no default flow" in output
    assert validate("--strict", str(REPO / "bpmn" / "workers_comp"))[0] == 0


def test_the_bundled_diagrams_have_neither_errors_nor_warnings(validate, monkeypatch):
    monkeypatch.setenv("CASEWORK_BPMN_PATH", str(REPO / "bpmn"))
    code, output = validate("--strict", str(REPO / "bpmn"))
    assert (code, output.splitlines()) == (0, ["acute_hospital: ok", "common: ok", "inpatient_rehab: ok",
                                               "workers_comp: ok"])


@pytest.mark.parametrize("content, message", [
    (b"", "a.bpmn, line 1: the file is not well-formed XML: Document is empty"),
    (b'<?xml version="1.0"?>\n<a>\xe9\xff</a>', "Invalid bytes in character encoding"),
    (b"a" * (5 * 1024 * 1024 + 1), "a.bpmn: the file is larger than the 5 MB limit for diagrams."),
    (bytes(range(256)) * 8, "the file is not well-formed XML"),
])
def test_a_broken_file_is_one_clear_error(validate, tmp_path, content, message):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.bpmn").write_bytes(content)
    code, output = validate(str(tmp_path / "broken"))
    assert code == 1 and output.startswith("broken: 1 error(s), 0 warning(s)\n") and message in output


def test_a_folder_without_diagrams_or_a_missing_path_is_named(validate, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no diagrams here")
    code, output = validate(str(tmp_path / "notes"))
    assert code == 1 and output.strip() == f"Error: No .bpmn files found under {tmp_path / 'notes'}."
    code, output = validate(str(tmp_path / "nowhere"))
    assert code == 1 and output.strip() == f"Error: {tmp_path / 'nowhere'} does not exist."


def test_an_unreadable_file_is_one_line(validate, tmp_path, monkeypatch):
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "a.bpmn").write_text("<x/>")

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr(Path, "read_bytes", refuse)
    code, output = validate(str(tmp_path / "locked"))
    assert code == 1 and output.strip().startswith(f"Error: {tmp_path / 'locked'} could not be read: ")
    assert "Permission denied" in output and len(output.strip().splitlines()) == 1


def test_an_unexpected_failure_is_one_line_and_logs_no_traceback(validate, tmp_path, monkeypatch):
    def crash(diagram_set):
        raise RuntimeError("the parser fell over")
    monkeypatch.setattr(catalog, "_check_and_build", crash)
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger().addHandler(handler)
    try:
        code, output = validate(str(REPO / "tests" / "data" / "diagrams" / "intake"))
    finally:
        logging.getLogger().removeHandler(handler)
    assert code == 1
    assert output.splitlines() == ["intake: 1 error(s), 0 warning(s)",
                                   "  the diagrams could not be checked (RuntimeError: the parser fell over)."]
    assert "Traceback" not in log.getvalue()


def test_the_installed_command_prints_no_traceback_for_a_file_spiffworkflow_cannot_parse(tmp_path):
    folder = corpus_folder("miwg/reference/C.7.0.bpmn", tmp_path)
    command = Path(sys.executable).with_name("casework")
    assert command.is_file(), "the casework command is installed with the package (pip install -e .)"
    done = subprocess.run([str(command), "validate", str(folder)], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={"CASEWORK_BPMN_PATH": str(tmp_path / "none"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1, done.stderr
    assert "Cannot resolve dataOutputAssociation" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
