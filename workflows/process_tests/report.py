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
        lines.append("Coverage (flow nodes reached; sequence flows taken, i.e. gateway branches):")
        for file in sorted(report.coverage):
            item = report.coverage[file]
            reached, taken = len(item.reached & set(item.elements)), len(item.taken & set(item.flows))
            lines.append(f"  {file}: {reached}/{len(item.elements)} ({item.percent:.0f}%) nodes, "
                         f"{taken}/{len(item.flows)} ({item.flow_percent:.0f}%) flows")
            if item.missed:
                lines.append(f"    never reached: {', '.join(item.missed)}")
            if item.missed_flows:
                lines.append(f"    never taken: {', '.join(item.missed_flows)}")
    return lines
