"""Plain-text report of a process-test run, for the command line and the test suite."""
from __future__ import annotations

from .suite import SuiteReport


def format_report(report: SuiteReport, *, coverage: bool = False) -> list[str]:
    """Return the lines to print: failures first, then a summary, then coverage if asked."""
    lines = [f"ERROR {problem}" for problem in report.problems]
    for outcome in report.outcomes:
        if outcome.passed:
            lines.append(f"ok    {outcome.test.path} — {outcome.test.name} "
                         f"({outcome.steps_run} steps, {outcome.seconds:.2f} s)")
        else:
            lines.append(f"FAIL  {outcome.test.path} — {outcome.test.name}")
            lines.extend(f"      {failure}" for failure in outcome.failures)
    failed = sum(1 for outcome in report.outcomes if not outcome.passed)
    lines.append(f"{len(report.outcomes)} process test(s): {len(report.outcomes) - failed} passed, {failed} failed"
                 + (f", {len(report.problems)} could not run" if report.problems else ""))
    if coverage:
        lines.append("Flow-node coverage:")
        for file in sorted(report.coverage):
            item = report.coverage[file]
            reached = len(item.reached & set(item.elements))
            lines.append(f"  {file}: {reached}/{len(item.elements)} ({item.percent:.0f}%)")
            if item.missed:
                lines.append(f"    never reached: {', '.join(item.missed)}")
    return lines
