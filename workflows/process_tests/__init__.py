"""Process tests: YAML scenarios designers write next to their diagrams (see bpmn/README.md)."""
from .model import ProcessTest, ProcessTestFormatError, load_process_test
from .report import format_report
from .runner import TestOutcome, run_process_test
from .suite import DiagramCoverage, SuiteReport, run_diagram_tests

__all__ = [
    "DiagramCoverage",
    "ProcessTest",
    "ProcessTestFormatError",
    "SuiteReport",
    "TestOutcome",
    "format_report",
    "load_process_test",
    "run_diagram_tests",
    "run_process_test",
]
