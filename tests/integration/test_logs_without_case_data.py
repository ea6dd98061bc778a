"""A day of work, with its faults, logged at DEBUG from every logger: no patient name, MRN or form value is logged.

Cases are opened and worked through the API and the pages with recognisable data; a form is refused,
a script fails on the data, a page and an API call hit bugs whose messages quote the data, a database
error quotes its parameters, a timer fires and another fails. The logs may name kinds and ids only.
"""
from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import IntegrityError

from service import create_app, jobs
from tests.e2e.conftest import ENGINE_DATA, REPO, diagram_files
from tests.unit.test_engine import SCRIPT_PROCESS
from tests.web.conftest import Visitor
from workflows import accounts, handlers

PATIENT, MRN = "Zebulon Quackenbush", "MRN-987654"
DIAGNOSIS = "Xylophonic pleurisy of the left ankle"
NOTES = "Lives alone above the Periwinkle Bakery; daughter Ottilie visits Sundays"
RATIONALE = "Telemetry shows Wenckebach block; keep inpatient per Dr. Abernathy-Vole"
NOT_A_NUMBER = "twelve-ish Quackenbush"
PAYER_NOTE = "Payer rep Thaddeus Grimsby-Oakes, reference PX-554433"
# What must never reach a log, whole or in part.
CASE_DATA = (PATIENT, MRN, "Zebulon", "Quackenbush", "987654", DIAGNOSIS, "Xylophonic", NOTES, "Periwinkle", "Ottilie",
             RATIONALE, "Wenckebach", "Abernathy", NOT_A_NUMBER, PAYER_NOTE, "Grimsby", "PX-554433")
PASSWORD = "correct horse battery staple"
UTILIZATION_REVIEW = REPO / "tests" / "data" / "diagrams" / "utilization_review"
# A script that fails on the case data: Python quotes the value in its error.
FAILING_SCRIPT = SCRIPT_PROCESS.replace("{script}", "mrn_digits = int(mrn)")


class MovableClock:
    def __init__(self):
        self.current = datetime.now(timezone.utc)

    def now(self) -> datetime:
        return self.current


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def app(database_url, tmp_path, monkeypatch, clock):
    monkeypatch.chdir(tmp_path)
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test", "SCHEDULER_ENABLED": False,
                      "SCRIPT_TIME_LIMIT_SECONDS": 0.5, "BPMN_PATH": str(REPO / "bpmn"), "CLOCK": clock})
    yield app
    app.extensions["casework"].uow.dispose()


@pytest.fixture
def api(app):
    """Call the API as one of four users, by name."""
    services = app.extensions["casework"]
    roles = {"dana": ["designer"], "carla": ["case_manager"], "pat": ["physician_advisor"],
             "sue": ["supervisor", "case_manager"]}
    tokens = {name: accounts.add_user(services, username=name, roles=user_roles)[1]
              for name, user_roles in roles.items()}

    def call(name: str, method: str, path: str, body: dict | None = None):
        return app.test_client().open(f"/api/v1{path}", method=method, json=body,
                                      headers={"Authorization": f"Bearer {tokens[name]}"})
    return call


@pytest.fixture
def logs(caplog):
    """Every record from every logger at DEBUG; SpiffWorkflow and APScheduler at the levels `casework` sets."""
    # Set directly: caplog.set_level(..., logger=) would also raise its own handler's level for every logger.
    quietened = {name: logging.getLogger(name).level for name in ("spiff", "apscheduler")}
    for name in quietened:
        logging.getLogger(name).setLevel(logging.WARNING)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for name, level in quietened.items():
        logging.getLogger(name).setLevel(level)


def fail_with(make_error):
    def fail(*args, **kwargs):
        raise make_error()
    return fail


def record_texts(record: logging.LogRecord) -> list[str]:
    """Everything a handler could write of a record: message, arguments, exception, stack and extra fields."""
    texts = [record.getMessage(), repr(record.args), record.exc_text or "", record.stack_info or "",
             repr(vars(record))]
    if record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
    return texts


def start(api, process_id: str, **data) -> dict:
    response = api("carla", "POST", "/cases", {"process_id": process_id, "subject_name": PATIENT,
                                               "subject_ref": MRN, "data": data})
    assert response.status_code == 201, response.json
    return response.json


def open_task(api, case_id: int) -> dict:
    [task] = api("sue", "GET", f"/cases/{case_id}").json["open_tasks"]
    return task


def work_a_day_with_its_faults(app, api, clock, monkeypatch) -> None:
    services = app.extensions["casework"]
    for name, files in (("acute_hospital", diagram_files(UTILIZATION_REVIEW)), ("engine", diagram_files(ENGINE_DATA)),
                        ("scripted", {"scripted.bpmn": FAILING_SCRIPT})):
        assert api("dana", "POST", "/process-versions", {"name": name, "files": files}).status_code == 201

    # A case worked through the pages: a refused form, then the review.
    accounts.set_password(services, username="carla", password=PASSWORD)
    case = start(api, "acute_utilization_review", working_diagnosis=DIAGNOSIS)
    review = open_task(api, case["id"])
    carla = Visitor(app.test_client())
    assert carla.sign_in("carla", PASSWORD).status_code == 303
    assert PATIENT in carla.get(f"/tasks/{review['id']}").get_data(as_text=True)
    refused = carla.post(f"/tasks/{review['id']}", {"status_recommendation": "observation", "criteria_met": "false",
                                                     "expected_midnights": NOT_A_NUMBER, "review_notes": NOTES,
                                                     "_action": "complete"})
    assert refused.status_code == 422
    done = carla.post(f"/tasks/{review['id']}", {"status_recommendation": "observation", "criteria_met": "false",
                                                  "expected_midnights": "1", "review_notes": NOTES,
                                                  "working_diagnosis": DIAGNOSIS, "_action": "complete"})
    assert done.status_code == 303
    assert carla.get(f"/cases/{case['id']}").status_code == 200

    # The physician advisor's review through the API.
    advisor = open_task(api, case["id"])
    assert api("pat", "POST", f"/tasks/{advisor['id']}/complete",
               {"data": {"advisor_decision": "keep_status", "advisor_rationale": RATIONALE}}).status_code == 200

    # A script that fails on the MRN: an incident, with the error kept in the database.
    scripted = start(api, "scripted", mrn=MRN)
    failed = api("sue", "POST", f"/tasks/{open_task(api, scripted['id'])['id']}/complete", {"data": {"mrn": MRN}})
    assert failed.status_code == 422 and failed.json["error"]["incident_id"]

    # Bugs whose messages quote the case, on a page and in the API; a database error quoting its parameters.
    with monkeypatch.context() as patched:
        patched.setattr(handlers, "get_case", fail_with(
            lambda: RuntimeError(f"cannot show {PATIENT} ({MRN}): diagnosis {DIAGNOSIS!r}")))
        assert carla.get(f"/cases/{case['id']}").status_code == 500
        assert api("sue", "GET", f"/cases/{case['id']}").status_code == 500
    with monkeypatch.context() as patched:
        patched.setattr(handlers, "list_tasks", fail_with(lambda: IntegrityError(
            "INSERT INTO case_note (case_id, body) VALUES (?, ?)", (case["id"], NOTES),
            sqlite3.IntegrityError(f"UNIQUE constraint failed for {MRN}"))))
        assert api("sue", "GET", "/tasks").status_code == 500

    # Timers that fire (the review's next date, a payer wait) and one that fails on a bug quoting the case.
    for data in ({"payer_note": PAYER_NOTE}, {"payer_note": PAYER_NOTE, "hits_the_bug": True}):
        waiting = start(api, "payer_wait")
        assert api("sue", "POST", f"/tasks/{open_task(api, waiting['id'])['id']}/complete",
                   {"data": data}).status_code == 200
    clock.current += timedelta(hours=25)
    resume = services.engine.resume

    def resume_unless_buggy(bundle, state, *args, **kwargs):
        if "hits_the_bug" in state:
            raise KeyError(f"{PATIENT} {MRN}")
        return resume(bundle, state, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(services.engine, "resume", resume_unless_buggy)
        assert handlers.fire_due_timers(services) == 2
    # The scheduler's poll when firing itself fails.
    with monkeypatch.context() as patched:
        patched.setattr(jobs, "fire_due_timers", fail_with(lambda: RuntimeError(f"poll failed on {PAYER_NOTE}")))
        jobs.TimerScheduler(app, BackgroundScheduler()).poll()


def test_no_case_data_is_logged_through_a_day_of_work_and_faults(logs, app, api, clock, monkeypatch):
    work_a_day_with_its_faults(app, api, clock, monkeypatch)

    records = logs.get_records("setup") + logs.records
    messages = [record.getMessage() for record in records]
    assert any(record.levelno == logging.DEBUG for record in records), "DEBUG records are captured"
    assert any("Unexpected error on a web page (RuntimeError)" in text for text in messages)
    assert any("Unexpected error in the API (IntegrityError)" in text for text in messages)
    assert any("Firing the timers of case" in text and "KeyError" in text for text in messages)
    assert any("Firing due timers failed" in text for text in messages)
    leaks = [(record.name, value) for record in records for text in record_texts(record)
             for value in CASE_DATA if value in text]
    assert leaks == [], f"case data in the logs: {sorted(set(leaks))}"
