"""Run the process tests of diagram sets and measure which flow nodes they reach."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .. import catalog, diagram_xml
from ..engine import Engine
from ..errors import DiagramError
from .model import ProcessTestFormatError, load_process_test
from .runner import TestOutcome, run_process_test

TEST_FOLDER = "tests/"


@dataclass
class DiagramCoverage:
    """Flow nodes of one diagram file, and which of them the tests reached."""

    file: str
    elements: dict[str, str]  # element id -> process id
    reached: set[str] = field(default_factory=set)
    flows: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # flow id -> (process, source, target)
    taken: set[str] = field(default_factory=set)

    @property
    def missed(self) -> list[str]:
        return sorted(set(self.elements) - self.reached)

    @property
    def missed_flows(self) -> list[str]:
        return sorted(set(self.flows) - self.taken)

    @property
    def percent(self) -> float:
        return 100.0 * len(self.reached & set(self.elements)) / len(self.elements) if self.elements else 100.0

    @property
    def flow_percent(self) -> float:
        return 100.0 * len(self.taken & set(self.flows)) / len(self.flows) if self.flows else 100.0


@dataclass
class SuiteReport:
    outcomes: list[TestOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # sets or test files that could not run at all
    coverage: dict[str, DiagramCoverage] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems and all(outcome.passed for outcome in self.outcomes)


def run_diagram_tests(diagram_sets: Sequence[catalog.DiagramSet], library: Sequence[catalog.DiagramSet],
                      *, engine: Engine | None = None, only: str | None = None) -> SuiteReport:
    """Run every process test of the sets (or only the one at path `only` in its set).

    Coverage counts the sets' own diagrams and the library's diagrams they reach.
    """
    engine = engine or Engine(trace_elements=True)
    report = SuiteReport()
    for diagram_set in diagram_sets:
        complete = catalog.with_dependencies(diagram_set, library)
        errors = [problem for problem in catalog.validate(complete) if problem.is_error]
        if errors:
            report.problems.append(f"{diagram_set.name}: the diagrams do not validate: "
                                   + "; ".join(str(problem) for problem in errors))
            continue
        documents = [root for _, root in diagram_xml.xml_documents(complete.files, ".bpmn")]
        bundles = _bundles(complete, documents)
        labels = _file_labels(complete, bundles)
        _count_elements(report, complete, bundles, labels)
        flows = _count_flows(report, documents, labels)
        for path in sorted(p for p in diagram_set.files if _is_test(p) and p not in complete.dependency_files
                           and only in (None, p)):
            label = f"{diagram_set.name}/{path}"
            try:
                test = load_process_test(label, diagram_set.files[path])
            except ProcessTestFormatError as err:
                report.problems.append(str(err))
                continue
            outcome = run_process_test(test, bundles, engine)
            report.outcomes.append(outcome)
            for reached in outcome.reached:
                file = labels.get(reached[0])
                if file not in report.coverage:
                    continue
                if len(reached) == 2:
                    report.coverage[file].reached.add(reached[1])
                else:
                    report.coverage[file].taken.update(flows.get(reached, ()))
    return report


def _is_test(path: str) -> bool:
    return path.startswith(TEST_FOLDER) and path.lower().endswith((".yaml", ".yml"))


def _bundles(complete: catalog.DiagramSet, documents: list) -> dict:
    """A bundle for every executable process in the set, called ones included (a test may start any)."""
    bundles = {}
    for root in documents:
        for process in root.iter(diagram_xml.bpmn_tag("process")):
            process_id = process.get("id")
            if process_id and diagram_xml.is_executable(process) and process_id not in bundles:
                try:
                    bundles[process_id] = catalog.bundle_from_files(process_id, complete.files)
                except DiagramError:
                    continue  # validate() already reported whatever stops it from building
    return bundles


def _file_labels(complete: catalog.DiagramSet, bundles: dict) -> dict[str, str]:
    """Process (and embedded sub-process) spec name -> diagram file, named from the bpmn/ root."""
    labels = {}
    for bundle in bundles.values():
        for spec in (bundle.spec, *bundle.subprocess_specs.values()):
            if spec.file:
                labels[spec.name] = spec.file if spec.file in complete.dependency_files else f"{complete.name}/{spec.file}"
    return labels


def _count_elements(report: SuiteReport, complete: catalog.DiagramSet, bundles: dict, labels: dict[str, str]) -> None:
    for bundle in bundles.values():
        for spec in (bundle.spec, *bundle.subprocess_specs.values()):
            file = labels.get(spec.name)
            if file is None:
                continue
            coverage = report.coverage.setdefault(file, DiagramCoverage(file, {}))
            for task_spec in spec.task_specs.values():
                if task_spec.bpmn_id:  # SpiffWorkflow's own specs (Start, End, joins it adds) have none
                    coverage.elements.setdefault(task_spec.bpmn_id, spec.name)


def _count_flows(report: SuiteReport, documents: list, labels: dict[str, str]) -> dict:
    """Record each diagram's sequence flows; return (process, source, target) -> flow ids."""
    by_ends: dict[tuple[str, str, str], list[str]] = {}
    for root in documents:
        for flow in root.iter(diagram_xml.bpmn_tag("sequenceFlow")):
            container = flow.getparent().get("id")
            file = labels.get(container)
            if file not in report.coverage or not flow.get("id"):
                continue
            ends = (container, flow.get("sourceRef"), flow.get("targetRef"))
            report.coverage[file].flows[flow.get("id")] = ends
            by_ends.setdefault(ends, []).append(flow.get("id"))
    return by_ends
