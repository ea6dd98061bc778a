"""The `casework` command against a real database."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from service import create_app
from service.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_cli(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CASEWORK_DATABASE_URL", database_url)
    monkeypatch.setenv("CASEWORK_SECRET_KEY", "test")
    monkeypatch.chdir(tmp_path)

    def run(*args):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)
    return run


def test_db_upgrade_reports_an_up_to_date_database(run_cli):
    result = run_cli("db", "upgrade")
    assert result.exit_code == 0 and "up to date" in result.output


def test_validate_accepts_the_bundled_diagrams(run_cli):
    result = run_cli("validate", str(REPO / "bpmn"))
    assert result.exit_code == 0, result.output
    assert "acute_hospital: ok" in result.output


def test_validate_names_the_file_element_and_problem_and_exits_1(run_cli, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    text = (REPO / "tests" / "data" / "engine" / "payer_wait.bpmn").read_text().replace('"PT24H"', "PT24H")
    (broken / "wait.bpmn").write_text(text)
    result = run_cli("validate", str(broken))
    assert result.exit_code == 1
    assert "wait.bpmn" in result.output and "wait_a_day" in result.output
    assert "timer duration 'PT24H' must be quoted" in result.output


def test_deploy_then_user_add_gives_a_working_token(run_cli, database_url):
    deployed = run_cli("deploy", str(REPO / "tests" / "data" / "diagrams" / "utilization_review"))
    assert deployed.exit_code == 0 and "acute_utilization_review v1" in deployed.output
    added = run_cli("user", "add", "nina", "--role", "case_manager", "--role", "social_worker",
                    "--setting", "acute_hospital")
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    app = create_app({"DATABASE_URL": database_url, "SCHEDULER_ENABLED": False})
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json
    assert me == {"username": "nina", "display_name": "nina", "roles": ["case_manager", "social_worker"],
                  "settings": ["acute_hospital"]}


def test_user_add_refuses_an_unknown_role_with_a_clear_message(run_cli):
    result = run_cli("user", "add", "nina", "--role", "wizard")
    assert result.exit_code != 0
    assert "Unknown role(s) ['wizard']" in result.output


def test_an_unreachable_database_is_named_instead_of_a_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("CASEWORK_DATABASE_URL", "postgresql+psycopg://127.0.0.1:5999/nowhere")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "Cannot reach the database" in result.output and "5999" in result.output
    assert "Traceback" not in result.output


def test_validate_resolves_called_processes_from_the_configured_bpmn_folder(run_cli, tmp_path, monkeypatch):
    diagrams = REPO / "tests" / "data" / "diagrams"
    monkeypatch.setenv("CASEWORK_BPMN_PATH", str(diagrams))
    assert run_cli("validate", str(diagrams / "referral")).exit_code == 0
    monkeypatch.setenv("CASEWORK_BPMN_PATH", str(tmp_path / "empty"))
    refused = run_cli("validate", str(diagrams / "referral"))
    assert refused.exit_code == 1 and "which no diagram in the set defines" in refused.output


def test_deploying_a_folder_deploys_each_set_and_not_the_common_library_alone(run_cli, monkeypatch):
    diagrams = REPO / "tests" / "data" / "diagrams"
    monkeypatch.setenv("CASEWORK_BPMN_PATH", str(diagrams))
    result = run_cli("deploy", str(diagrams))
    assert result.exit_code == 0, result.output
    deployed = {line.split()[0] for line in result.output.splitlines() if " v1 " in line}
    assert deployed == {"intake", "referral", "acute_utilization_review"}, "follow_up goes out inside referral only"


def test_the_folder_deployed_at_start_up_does_not_undo_a_designers_later_version(run_cli, monkeypatch, database_url):
    from service.cli import deploy_folder
    from workflows import catalog, deployment

    diagrams = REPO / "tests" / "data" / "diagrams"
    monkeypatch.setenv("CASEWORK_BPMN_PATH", str(diagrams))
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "test", "SCHEDULER_ENABLED": False,
                      "BPMN_PATH": str(diagrams)})
    services = app.extensions["casework"]
    try:
        [first] = [v for v in deploy_folder(app, diagrams, only_new=True) if v.process_id == "intake"]
        edited = catalog.read_diagram_set(diagrams / "intake")
        files = {path: data.replace(b'name="', b'name="Edited ', 1) if path.endswith(".bpmn") else data
                 for path, data in edited.files.items()}
        [designers] = deployment.deploy_diagram_set(services, diagram_set=catalog.DiagramSet("intake", files),
                                                    actor=None, note="edited in the designer")
        assert designers.version == first.version + 1

        restarted = [v for v in deploy_folder(app, diagrams, only_new=True) if v.process_id == "intake"]
        assert [v.version for v in restarted] == [designers.version], "the designer's version stays the latest"
        explicit = [v for v in deploy_folder(app, diagrams) if v.process_id == "intake"]
        assert [v.version for v in explicit] == [designers.version + 1], "`casework deploy` still deploys the folder"
    finally:
        services.uow.dispose()


def test_demo_loads_a_user_per_lane_and_cases_of_every_setting_at_different_stages(run_cli, database_url):
    import re

    from service.demo import DEMO_USERS

    assert run_cli("deploy", str(REPO / "bpmn")).exit_code == 0
    result = run_cli("demo")
    assert result.exit_code == 0 and "Loaded demo data." in result.output
    lanes = {lane for path in (REPO / "bpmn").glob("*/*.bpmn")
             for lane in re.findall(r'<bpmn:lane id="[^"]*" name="([^"]+)"', path.read_text())}
    assert lanes <= {role for _, _, roles, _ in DEMO_USERS for role in roles}, "someone can work every lane"
    app = create_app({"DATABASE_URL": database_url, "SCHEDULER_ENABLED": False})
    services = app.extensions["casework"]
    with services.uow(read_only=True) as uow:
        cases = uow.cases.list(limit=100)
        worked = {case.setting for case in cases
                  if any(event.kind == "task_completed" for event in uow.events.for_case(case.id))}
    assert {case.setting for case in cases} == {"acute_hospital", "inpatient_rehab", "workers_comp"}
    assert {"inpatient_rehab", "workers_comp"} <= worked, "some demo cases are past their first task"
    assert run_cli("demo").output.strip().endswith("Users exist already; nothing loaded.")


def test_test_diagrams_runs_a_set_or_one_test_and_reports_coverage(run_cli):
    whole = run_cli("test-diagrams", str(REPO / "bpmn" / "workers_comp"), "--coverage")
    assert whole.exit_code == 0, whole.output
    assert "workers_comp/return_to_work.bpmn: 12/12 (100%)" in whole.output
    one = run_cli("test-diagrams", str(REPO / "bpmn" / "workers_comp" / "tests" / "workers_comp_precert_clocks.yaml"))
    assert one.exit_code == 0 and "1 process test(s): 1 passed, 0 failed" in one.output


def test_test_diagrams_fails_with_the_step_and_the_difference(run_cli, tmp_path):
    folder = tmp_path / "referral"
    source = REPO / "tests" / "data" / "process_tests" / "referral"
    (folder / "forms").mkdir(parents=True)
    (folder / "tests").mkdir()
    (folder / "referral.bpmn").write_bytes((source / "referral.bpmn").read_bytes())
    (folder / "forms" / "intake.schema.json").write_bytes((source / "forms" / "intake.schema.json").read_bytes())
    (folder / "tests" / "wrong.yaml").write_text("steps:\n  - expect: {tasks: [chase]}\n")
    result = run_cli("test-diagrams", str(folder))
    assert result.exit_code == 1
    assert "FAIL  referral/tests/wrong.yaml" in result.output
    assert "step 1 (expect): no task 'chase' among the open tasks (intake)" in result.output
