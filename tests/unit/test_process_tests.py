"""The process-test runner designers use: format, steps, expectations, failures, coverage."""
from pathlib import Path

import pytest

from workflows import catalog
from workflows.process_tests import ProcessTestFormatError, format_report, load_process_test, run_diagram_tests

REFERRAL = Path(__file__).resolve().parents[1] / "data" / "process_tests" / "referral"

HAPPY = """
name: Accepted at the first provider
start: 2026-03-06T15:00:00-05:00   # a Friday afternoon
timezone: America/New_York
data: {patient_name: Ada Brown}
steps:
  - expect:
      status: active
      tasks:
        - task: intake
          lane: case_manager
          due: 2026-03-09T12:00:00-04:00     # noon the next business day, after DST began
  - complete: intake
    data: {provider_name: Sunrise SNF, referred_on: 2026-03-06}
  - expect:
      tasks: []
      messages: [referral_response]
      sent: [referral_sent]
      data: {provider_name: Sunrise SNF, referred_on: "2026-03-06"}
  - message: referral_response
    payload: {accepted: true}
  - expect: {status: completed}
"""

DECLINED = """
name: Declined, then nothing for a day
steps:
  - complete: intake
    data: {provider_name: Oak LTCH, referred_on: "2026-01-05"}
  - message: referral_response
    payload: {accepted: false}
  - expect:
      tasks: [{task: chase, due: 2026-01-05T13:00:00+00:00, at_risk: 2026-01-05T12:12:00+00:00}]
  - complete: chase
    data: {}
  - expect:
      timers: [{timer: cool_off, due: 2026-01-06T09:00:00+00:00}]
  - advance: PT23H59M
  - expect: {status: active, timers: [cool_off]}
  - advance: PT1M
  - expect: {status: completed, timers: []}
"""


def run(*tests: str, folder: Path = REFERRAL):
    files = dict(catalog.read_diagram_set(folder).files)
    for number, text in enumerate(tests):
        files[f"tests/t{number}.yaml"] = text.encode()
    return run_diagram_tests([catalog.DiagramSet(folder.name, files)], [])


def failures(report) -> list[str]:
    return [failure for outcome in report.outcomes for failure in outcome.failures] + report.problems


class TestPassingScenarios:
    def test_both_paths_pass_and_reach_every_flow_node(self):
        report = run(HAPPY, DECLINED)
        assert failures(report) == [] and report.passed
        coverage = report.coverage["referral/referral.bpmn"]
        assert coverage.missed == [] and coverage.percent == 100.0
        assert coverage.missed_flows == [] and len(coverage.flows) == 8
        assert {"intake", "send_referral", "await_response", "accepted_gateway", "chase", "cool_off",
                "placed", "not_placed", "start"} <= set(coverage.elements)

    def test_coverage_names_what_no_test_reached(self):
        report = run(HAPPY)
        assert report.coverage["referral/referral.bpmn"].missed == ["chase", "cool_off", "not_placed"]
        lines = format_report(report, coverage=True)
        assert "  referral/referral.bpmn: 6/9 (67%) nodes, 5/8 (62%) flows" in lines
        assert "    never reached: chase, cool_off, not_placed" in lines
        assert "    never taken: f_chased, f_cooled, f_declined" in lines

    def test_elements_with_modeler_default_ids_count_too(self):
        files = dict(catalog.read_diagram_set(REFERRAL).files)
        files["referral.bpmn"] = files["referral.bpmn"].replace(b'"start"', b'"StartEvent_1"').replace(
            b'"placed"', b'"EndEvent_0abc"').replace(b">placed<", b">EndEvent_0abc<").replace(b">start<", b">StartEvent_1<")
        files["tests/t.yaml"] = HAPPY.encode()
        report = run_diagram_tests([catalog.DiagramSet("referral", files)], [])
        coverage = report.coverage["referral/referral.bpmn"]
        assert report.passed and {"StartEvent_1", "EndEvent_0abc"} <= coverage.reached <= set(coverage.elements)

    def test_repeated_steps_run_each_turn(self):
        report = run("""
steps:
  - repeat: 3
    steps:
      - expect: {tasks: [intake]}
  - complete: intake
    data: {provider_name: A, referred_on: "2026-01-05"}
""")
        assert report.passed and report.outcomes[0].steps_run == 4


class TestFailuresAreReadable:
    def test_a_wrong_due_time_names_the_step_the_task_and_both_times(self):
        report = run(HAPPY.replace("2026-03-09T12:00:00-04:00", "2026-03-09T15:00:00-04:00"))
        [failure] = failures(report)
        assert failure.startswith("step 1 (expect): task 'intake': due is 2026-03-09T16:00:00+00:00")
        assert "expected 2026-03-09T15:00:00-04:00" in failure

    def test_an_unexpected_open_task_is_named(self):
        report = run("steps:\n  - expect: {tasks: []}\n")
        assert failures(report) == ["step 1 (expect): unexpected open tasks: intake (all open tasks: intake)"]

    def test_form_errors_name_the_field(self):
        report = run("steps:\n  - complete: intake\n    data: {provider_name: A}\n")
        [failure] = failures(report)
        assert "step 1 (complete intake)" in failure and "referred_on: This field is required." in failure

    def test_an_expected_error_passes_and_changes_nothing(self):
        report = run("""
steps:
  - complete: intake
    data: {provider_name: ""}
    error: provider_name
  - expect: {tasks: [intake], sent: []}
""")
        assert report.passed

    def test_an_expected_error_that_does_not_happen_fails(self):
        report = run("steps:\n  - complete: intake\n    data: {provider_name: A, referred_on: '2026-01-05'}\n    error: nope\n")
        assert failures(report) == ["step 1 (complete intake): it was expected to fail with 'nope', but it succeeded"]

    def test_a_missing_task_lists_the_open_ones(self):
        report = run("steps:\n  - complete: chase\n    data: {}\n")
        assert failures(report) == ["step 1 (complete chase): no open task 'chase'; open tasks: intake"]

    def test_a_failure_inside_a_repeat_names_the_turn(self):
        report = run("""
steps:
  - complete: intake
    data: {provider_name: A, referred_on: "2026-01-05"}
  - repeat: 2
    steps:
      - message: referral_response
        payload: {accepted: true}
""")
        [failure] = failures(report)
        assert failure.startswith("step 2 > turn 2 > step 1 (message referral_response): the case has completed")

    def test_the_clock_does_not_go_back(self):
        report = run("start: 2026-03-02T08:00:00+00:00\nsteps:\n  - advance_to: 2026-03-01T08:00:00+00:00\n")
        assert "does not go back" in failures(report)[0]

    def test_a_set_that_does_not_validate_is_reported_and_not_run(self, tmp_path):
        (tmp_path / "broken.bpmn").write_text("<bpmn:definitions")
        (tmp_path / "tests").mkdir()
        (tmp_path / "tests" / "t.yaml").write_text("steps: [{expect: {status: active}}]")
        report = run_diagram_tests([catalog.read_diagram_set(tmp_path)], [])
        assert not report.passed and report.outcomes == []
        assert report.problems[0].startswith(f"{tmp_path.name}: the diagrams do not validate")


class TestFormat:
    @pytest.mark.parametrize("text, message", [
        ("steps: []", "'steps' must be a non-empty list"),
        ("steps:\n  - complet: intake", "step 1 must have exactly one of"),
        ("steps:\n  - complete: intake\n    dat: {}", "step 1: unknown key(s) 'dat'"),
        ("steps:\n  - expect: {task: [intake]}", "step 1 (expect): unknown key(s) 'task'"),
        ("steps:\n  - repeat: 0\n    steps: [{expect: {}}]", "'repeat' must be a whole number"),
        ("steps:\n  - repeat: 2\n    steps:\n      - advance: P1D\n        extra: 1", "step 1 > step 1: unknown key(s) 'extra'"),
        ("start: soon\nsteps: [{expect: {}}]", "'start': 'soon' is not an ISO 8601"),
        ("[1, 2", "not valid YAML"),
    ])
    def test_mistakes_are_reported_with_their_place(self, text, message):
        with pytest.raises(ProcessTestFormatError) as raised:
            load_process_test("x.yaml", text)
        assert message in str(raised.value) and str(raised.value).startswith("x.yaml: ")

    def test_dates_stay_text_as_a_form_would_submit_them(self):
        test = load_process_test("x.yaml", "data: {admitted_on: 2026-03-02}\nsteps: [{expect: {}}]")
        assert test.data == {"admitted_on": "2026-03-02"}
