"""`casework audit export`: a case's or a person's trail, changes and reads merged in time order (both databases)."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from service import create_app
from service.cli import main
from service.persistence import tables as t
from workflows import accounts, audit, catalog, deployment, handlers
from workflows.audit import CaseRead, ReadChannel

REPO = Path(__file__).resolve().parents[2]
UTILIZATION_REVIEW = REPO / "tests" / "data" / "diagrams" / "utilization_review"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
COLUMNS = ["at", "actor", "case_id", "action", "channel", "detail"]


class SteppingClock:
    def __init__(self):
        self.current = T0

    def now(self) -> datetime:
        return self.current


@pytest.fixture
def env(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CASEWORK_DATABASE_URL", database_url)
    monkeypatch.setenv("CASEWORK_SECRET_KEY", "test")
    monkeypatch.chdir(tmp_path)
    clock = SteppingClock()
    app = create_app({"DATABASE_URL": database_url, "SCHEDULER_ENABLED": False, "CLOCK": clock})
    services = app.extensions["casework"]
    services.test_clock = clock
    yield services
    services.uow.dispose()


@pytest.fixture
def cases(env):
    """Two cases: opened by carla at 09:00; cole reads both and notes one at 10:00, carla reads at 11:00."""
    services, clock = env, env.test_clock
    for username in ("carla", "cole"):
        accounts.add_user(services, username=username, roles=["case_manager"])
    carla, cole = (accounts.active_user(services, username=name) for name in ("carla", "cole"))
    deployment.deploy_diagram_set(services, diagram_set=catalog.read_diagram_set(UTILIZATION_REVIEW, name="acute_hospital"),
                                  actor=None)
    first, second = (handlers.start_case(services, actor=carla, process_id="acute_utilization_review",
                                         subject_name=name, subject_ref=ref).id
                     for name, ref in (("Maria Gonzalez", "MRN-1"), ("Ken Ito", "MRN-2")))
    clock.current = T0 + timedelta(hours=1)
    audit.record_read(services, actor=cole, case_id=first, channel=ReadChannel.PAGE, what="case page")
    audit.record_read(services, actor=cole, case_id=second, channel=ReadChannel.API, what=f"GET /api/v1/cases/{second}")
    handlers.add_note(services, actor=cole, case_id=first, text="Daughter is the health care proxy.")
    clock.current = T0 + timedelta(hours=2)
    audit.record_read(services, actor=carla, case_id=first, channel=ReadChannel.PAGE, what="=HYPERLINK(\"x\")")
    return first, second


def run(*args):
    result = CliRunner().invoke(main, ["audit", "export", *args], catch_exceptions=False)
    return result


def table(output: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(output)))


def stored_trail(services, *, case_id=None, actor=None) -> list[dict]:
    """The trail as the tables hold it, changes then reads at one instant, as plain values."""
    event, read = t.case_event.c, t.case_read.c
    with services.uow(read_only=True) as uow:
        changes = uow.connection.execute(select(t.case_event).order_by(event.id)).all()
        reads = uow.connection.execute(select(t.case_read).order_by(read.id)).all()
    rows = [(row.at, 0, row.id, {"actor": row.actor, "case_id": row.case_id, "action": row.kind, "channel": None,
                                 "payload": row.payload}) for row in changes]
    rows += [(row.at, 1, row.id, {"actor": row.actor, "case_id": row.case_id, "action": "read", "channel": row.channel,
                                  "detail": row.what}) for row in reads]
    return [{"at": at.isoformat(), **entry} for at, _, _, entry in sorted(rows, key=lambda row: row[:3])
            if case_id in (None, entry["case_id"]) and actor in (None, entry["actor"])]


def as_stored(exported: dict) -> dict:
    """An exported row in stored_trail's shape: a change's detail parsed back into its payload."""
    row = {**exported, "case_id": int(exported["case_id"]), "channel": exported["channel"] or None}
    if row["action"] != "read":
        row["payload"] = json.loads(row.pop("detail"))
    return row


class TestExportingACase:
    def test_csv_holds_the_cases_changes_and_reads_in_time_order(self, env, cases):
        first, _ = cases
        expected = stored_trail(env, case_id=first)
        result = run("--case", str(first))
        assert result.exit_code == 0, result.output
        rows = table(result.stdout)
        assert list(rows[0]) == COLUMNS
        assert rows[0]["action"] == "case_opened" and rows[0]["actor"] == "carla" and rows[0]["at"] == T0.isoformat()
        assert [row["action"] for row in rows][-3:] == ["note_added", "read", "read"], "changes first at one instant"
        carla_read = {**expected[-1], "detail": "'" + expected[-1]["detail"]}  # a formula, defused
        assert [as_stored(row) for row in rows] == expected[:-1] + [carla_read]

    def test_json_is_an_array_of_the_same_rows(self, env, cases):
        first, _ = cases
        expected = stored_trail(env, case_id=first)
        result = run("--case", str(first), "--format", "json")
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
        assert [set(row) for row in rows] == [set(COLUMNS)] * len(rows)
        assert [as_stored(row) for row in rows] == expected
        assert rows[-1]["detail"] == '=HYPERLINK("x")', "JSON is not a spreadsheet: the text stays as it was"

    def test_time_bounds_keep_from_since_up_to_but_not_at_until(self, env, cases):
        first, _ = cases
        hour = T0 + timedelta(hours=1)
        result = run("--case", str(first), "--since", hour.isoformat(), "--until", "2026-03-02T12:00:00+01:00")
        assert result.exit_code == 0, result.output
        rows = table(result.stdout)
        assert [(row["actor"], row["action"]) for row in rows] == [("cole", "note_added"), ("cole", "read")]
        assert {row["at"] for row in rows} == {hour.isoformat()}

    def test_a_date_alone_means_its_midnight_in_utc(self, env, cases):
        first, _ = cases
        everything = stored_trail(env, case_id=first)
        assert table(run("--case", str(first), "--until", "2026-03-02").stdout) == []
        on_the_day = table(run("--case", str(first), "--since", "2026-03-02", "--until", "2026-03-03").stdout)
        assert [row["at"] for row in on_the_day] == [row["at"] for row in everything]

    def test_the_export_is_itself_recorded_as_an_export_read_of_the_case(self, env, cases):
        first, _ = cases
        assert run("--case", str(first), "--since", "2030-01-01").exit_code == 0
        with env.uow(read_only=True) as uow:
            newest = uow.audit.reads_of_case(first, limit=1)[0]
        assert newest.channel == "export" and newest.actor.startswith("cli")
        assert newest.what == f"audit export of case {first}"

    def test_output_goes_to_a_file_and_the_summary_to_standard_error(self, env, cases, tmp_path):
        first, _ = cases
        target = tmp_path / "trail.csv"
        result = run("--case", str(first), "--output", str(target))
        assert result.exit_code == 0 and result.stdout == ""
        assert f"to {target}" in result.stderr
        assert len(table(target.read_text(encoding="utf-8"))) == len(stored_trail(env, case_id=first)) - 1, \
            "the export's own read is recorded after it was written"
        assert [path.name for path in tmp_path.iterdir() if path.suffix == ".part"] == []


class TestExportingAPerson:
    def test_a_users_reads_and_changes_across_cases(self, env, cases):
        first, second = cases
        expected = stored_trail(env, actor="cole")
        result = run("--user", "cole", "--format", "json")
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
        assert [(row["case_id"], row["action"], row["channel"]) for row in rows] == [
            (first, "note_added", None), (first, "read", "page"), (second, "read", "api")]
        assert [as_stored(row) for row in rows] == expected

    def test_each_case_a_users_export_covers_is_recorded_once(self, env, cases):
        first, second = cases
        assert run("--user", "cole").exit_code == 0
        with env.uow(read_only=True) as uow:
            exports = [read for case in (first, second) for read in uow.audit.reads_of_case(case) if read.channel == "export"]
        assert sorted(read.case_id for read in exports) == [first, second]
        assert {read.what for read in exports} == {"audit export of the trail of cole"}

    def test_a_long_trail_crosses_batch_boundaries_in_order(self, env, cases):
        first, _ = cases
        start = T0 + timedelta(days=1)
        with env.uow() as uow:
            uow.audit.add_reads([CaseRead(first, start + timedelta(seconds=n), "auditor.bot", "api", f"read {n}")
                                 for n in range(2500)])
            uow.commit()
        rows = table(run("--user", "auditor.bot").stdout)
        assert [row["detail"] for row in rows] == [f"read {n}" for n in range(2500)]


class TestRefusals:
    @pytest.mark.parametrize("args, message", [
        ((), "Give either --case ID or --user USERNAME"),
        (("--case", "1", "--user", "cole"), "Give either --case ID or --user USERNAME"),
        (("--case", "one"), "--case 'one' is not a case number"),
        (("--case", "9999"), "Case 9999 does not exist."),
        (("--user", "nobody"), "No user 'nobody' exists"),
        (("--case", "1", "--since", "yesterday"), "--since 'yesterday' is not an ISO 8601 date or time"),
        (("--case", "1", "--until", "2026-13-01"), "--until '2026-13-01' is not an ISO 8601 date or time"),
        (("--case", "1", "--since", "2026-03-03", "--until", "2026-03-02"), "Give an end after the start"),
        (("--case", "1", "--format", "xml"), "--format 'xml' is not offered: choose csv or json"),
    ], ids=["neither", "both", "not a number", "unknown case", "unknown user", "bad since", "bad until",
            "until before since", "bad format"])
    def test_a_bad_request_says_what_is_wrong_exits_1_and_changes_nothing(self, env, cases, tmp_path, args, message):
        target = tmp_path / "out.csv"
        before = stored_trail(env)
        result = run(*args, "--output", str(target))
        assert result.exit_code == 1
        assert message in result.output and "Traceback" not in result.output
        assert not target.exists()
        assert stored_trail(env) == before

    def test_an_unwritable_output_is_refused_by_name(self, env, cases, tmp_path):
        first, _ = cases
        result = run("--case", str(first), "--output", str(tmp_path / "missing" / "out.csv"))
        assert result.exit_code == 1 and "Cannot write" in result.output and "Traceback" not in result.output


class TestTheTrailOnlyGrows:
    @pytest.mark.parametrize("table_name", ["case_event", "case_read"])
    def test_the_database_refuses_an_update_or_delete_through_the_applications_connection(self, env, cases, table_name):
        table_ = getattr(t, table_name)
        before = stored_trail(env)
        for statement in (update(table_).values(actor="someone.else"), delete(table_)):
            with env.uow() as uow:
                with pytest.raises(DBAPIError, match=f"the {table_name} table is append-only"):
                    uow.connection.execute(statement)
        assert stored_trail(env) == before

    def test_the_repositories_offer_no_way_to_change_or_remove_audit_rows(self, env):
        with env.uow(read_only=True) as uow:
            for repository in (uow.audit, uow.events):
                offered = {name for name in dir(repository) if not name.startswith("_")}
                assert not offered & {"update", "delete", "remove", "save", "replace"}, type(repository).__name__

    def test_the_trail_comes_a_batch_at_a_time(self, env, cases):
        first, _ = cases
        with env.uow(read_only=True) as uow:
            batches = list(uow.audit.trail(case_id=first, batch_size=2))
        assert all(len(batch) <= 2 for batch in batches) and len(batches) > 1
        assert [entry.at.isoformat() for batch in batches for entry in batch] == \
            [row["at"] for row in stored_trail(env, case_id=first)]
