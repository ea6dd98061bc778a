"""Every check a diagram set goes through before it deploys, in one place.

Errors stop a set from deploying; warnings are reported and the set still deploys. The
catalog, `casework validate` and the designer pages all get their problems from here.
"""
from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from . import lint, lint_flow, lint_scripts, lint_tasks
from .errors import DiagramProblem


def check_diagram_set(*, files: Mapping[str, bytes], dependency_files: frozenset[str],
                      bpmn: Mapping[str, etree._Element], dmn: Mapping[str, etree._Element],
                      index: lint.DiagramIndex, flavour: str) -> list[DiagramProblem]:
    """Run every rule over a set's parsed files; return its errors and warnings, unordered."""
    own_bpmn = {path: root for path, root in bpmn.items() if path not in dependency_files}
    problems = lint.check_duplicate_ids(index)
    if len(own_bpmn) == sum(1 for path in files if path.lower().endswith(".bpmn") and path not in dependency_files):
        problems += lint.check_executable(own_bpmn)  # unreliable when a file could not be read
    problems += lint.check_calls(index)
    problems += lint.check_decisions(index, bpmn=bpmn, dmn=dmn, flavour=flavour)
    problems += lint.check_sequence_flows(bpmn)
    problems += lint.check_timers(bpmn)
    problems += lint.check_forms(files, bpmn)
    problems += lint_scripts.check_scripts(bpmn)
    problems += lint_tasks.check_human_tasks(bpmn)
    problems += lint_flow.check_gateway_defaults(bpmn)
    problems += lint_flow.check_unreachable(bpmn)
    problems += lint_flow.check_loops(bpmn)
    # A library process's warnings belong to the library set, where they are reported once.
    return [problem for problem in problems if problem.is_error or problem.file not in dependency_files]


def in_report_order(problems: list[DiagramProblem]) -> list[DiagramProblem]:
    """Order problems as they are shown: errors first, then warnings, each by file and line."""
    return sorted(problems, key=lambda p: (not p.is_error, p.file or "", p.line or 0))
