"""Due times from the organisation's calendar, and messages a case sends, seen through the API."""
from __future__ import annotations

from datetime import datetime

import pytest

from service import create_app
from tests.e2e.conftest import REPO, Api, diagram_files
from workflows import accounts

REFERRAL = REPO / "tests" / "data" / "process_tests" / "referral"
FRIDAY_AFTERNOON = datetime.fromisoformat("2026-03-06T15:00:00-05:00")


class FixedClock:
    def __init__(self, now: datetime):
        self.current = now

    def now(self) -> datetime:
        return self.current


@pytest.fixture
def api(database_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app({
        "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test", "SCHEDULER_ENABLED": False,
        "BPMN_PATH": str(REPO / "bpmn"), "CLOCK": FixedClock(FRIDAY_AFTERNOON),
        "TIMEZONE": "America/New_York", "HOLIDAYS": ["2026-03-09"],
    })
    services = app.extensions["casework"]
    _, designer = accounts.add_user(services, username="dana", roles=["designer"])
    _, manager = accounts.add_user(services, username="carla", roles=["case_manager"])
    deployed = Api(app.test_client(), designer).post("/process-versions",
                                                     json={"name": "referral", "files": diagram_files(REFERRAL)})
    assert deployed.status_code == 201, deployed.json
    return Api(app.test_client(), manager)


def test_a_business_day_rule_with_a_time_of_day_skips_the_weekend_and_the_holiday(api):
    case = api.post("/cases", json={"process_id": "test_referral", "subject_name": "Ada Brown", "subject_ref": "MRN-7"}).json
    [task] = api.get(f"/cases/{case['id']}").json["open_tasks"]
    # Friday 15:00 + 1 business day, Monday a holiday -> noon on Tuesday, after DST began on Sunday.
    assert datetime.fromisoformat(task["due_at"]) == datetime.fromisoformat("2026-03-10T12:00:00-04:00")
    at_risk = datetime.fromisoformat(task["at_risk_at"])
    assert FRIDAY_AFTERNOON < at_risk < datetime.fromisoformat(task["due_at"])


def test_a_message_the_case_sends_is_in_its_timeline_and_the_reply_moves_it_on(api):
    case = api.post("/cases", json={"process_id": "test_referral", "subject_name": "Ada Brown", "subject_ref": "MRN-7"}).json
    [task] = api.get(f"/cases/{case['id']}").json["open_tasks"]
    assert api.post(f"/tasks/{task['id']}/claim").status_code == 200
    done = api.post(f"/tasks/{task['id']}/complete", json={"data": {"provider_name": "Sunrise SNF", "referred_on": "2026-03-06"}})
    assert done.status_code == 200, done.json
    events = api.get(f"/cases/{case['id']}").json["events"]
    [sent] = [e for e in events if e["kind"] == "message_sent"]
    assert (sent["payload"], sent["actor"]) == ({"name": "referral_sent", "payload": {"provider": "Sunrise SNF"}}, "carla")
    reply = api.post("/messages", json={"name": "referral_response", "case_id": case["id"], "payload": {"accepted": True}})
    assert reply.status_code == 200, reply.json
    assert reply.json["status"] == "completed"
