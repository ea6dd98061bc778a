"""A case put on hold and taken off it through the JSON API, on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from service import create_app
from tests.e2e.conftest import REPO, Api
from tests.unit.test_clocks import clock_diagrams
from workflows import accounts, handlers

STARTED = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class MovableClock:
    def __init__(self, now: datetime):
        self.current = now

    def now(self) -> datetime:
        return self.current


@pytest.fixture
def clock():
    return MovableClock(STARTED)


@pytest.fixture
def app(database_url, tmp_path, monkeypatch, clock):
    monkeypatch.chdir(tmp_path)
    return create_app({
        "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test", "SCHEDULER_ENABLED": False,
        "BPMN_PATH": str(REPO / "bpmn"), "CLOCK": clock,
    })


@pytest.fixture
def api(app):
    services = app.extensions["casework"]
    tokens = {}
    for name, roles in (("dana", ["designer"]), ("carla", ["case_manager"]), ("sue", ["supervisor", "case_manager"])):
        _, tokens[name] = accounts.add_user(services, username=name, roles=roles)
    files = {path: content.decode() for path, content in clock_diagrams().items()}
    deployed = Api(app.test_client(), tokens["dana"]).post("/process-versions", json={"name": "clocks", "files": files})
    assert deployed.status_code == 201, deployed.json
    return {name: Api(app.test_client(), token) for name, token in tokens.items()}


def start_held_stay(carla) -> dict:
    order_at = (STARTED - timedelta(hours=2)).isoformat()
    response = carla.post("/cases", json={"process_id": "held_stay", "subject_name": "Maria Gonzalez",
                                          "subject_ref": "MRN-1", "data": {"order_at": order_at}})
    assert response.status_code == 201, response.json
    return response.json


def due_times(detail: dict) -> dict[str, str]:
    times = {f"timer:{t['element_id']}": t["due_at"] for t in detail["timers"]}
    times.update({f"task:{t['element_id']}": t["due_at"] for t in detail["open_tasks"] if t["due_at"]})
    times.update({f"at_risk:{t['element_id']}": t["at_risk_at"] for t in detail["open_tasks"] if t["at_risk_at"]})
    return times


def later(text: str, delta: timedelta) -> datetime:
    return datetime.fromisoformat(text) + delta


class TestHoldingACase:
    def test_a_case_held_for_30_hours_has_every_clock_moved_on_by_30_hours(self, api, clock):
        sue, carla = api["sue"], api["carla"]
        case = start_held_stay(carla)
        before = due_times(carla.get(f"/cases/{case['id']}").json)
        assert set(before) == {"timer:remind", "timer:wait_a_day", "task:im_notice", "at_risk:im_notice"}

        clock.current = STARTED + timedelta(hours=10)
        held = sue.post(f"/cases/{case['id']}/suspend", json={"reason": "Patient transferred out for surgery"})
        assert held.status_code == 200, held.json
        assert held.json["status"] == "suspended"
        assert datetime.fromisoformat(held.json["suspended_at"]) == clock.current
        detail = carla.get(f"/cases/{case['id']}").json
        assert detail["status"] == "suspended" and len(detail["open_tasks"]) == 2
        assert {t["status"] for t in detail["timers"]} == {"paused"}

        clock.current = STARTED + timedelta(hours=40)
        resumed = sue.post(f"/cases/{case['id']}/resume", json={"reason": "Back on the unit"})
        assert resumed.status_code == 200, resumed.json
        assert (resumed.json["status"], resumed.json["suspended_at"]) == ("active", None)

        after = carla.get(f"/cases/{case['id']}").json
        assert {key: datetime.fromisoformat(value) for key, value in due_times(after).items()} == {
            key: later(value, timedelta(hours=30)) for key, value in before.items()
        }
        kinds = [(e["kind"], e["actor"]) for e in after["events"]]
        assert kinds[-2:] == [("case_suspended", "sue"), ("case_resumed", "sue")]
        assert after["events"][-1]["payload"]["paused_seconds"] == 30 * 3600

    def test_the_scheduler_leaves_a_held_case_alone_and_fires_its_timer_after_the_pause(self, app, api, clock):
        sue, carla = api["sue"], api["carla"]
        case = start_held_stay(carla)
        services = app.extensions["casework"]
        clock.current = STARTED + timedelta(hours=10)
        assert sue.post(f"/cases/{case['id']}/suspend", json={"reason": "Transferred out"}).status_code == 200

        clock.current = STARTED + timedelta(hours=30)  # the day timer and two reminders would have fired by now
        assert handlers.fire_due_timers(services) == 0
        assert sue.post(f"/cases/{case['id']}/resume").status_code == 200  # no body: the reason is optional

        # Held for 20 h: the first reminder falls due at 12 + 20 h, the day timer at 24 + 20 h.
        clock.current = STARTED + timedelta(hours=31, minutes=59)
        assert handlers.fire_due_timers(services) == 0
        clock.current = STARTED + timedelta(hours=32)
        assert handlers.fire_due_timers(services) == 1
        clock.current = STARTED + timedelta(hours=43, minutes=59)
        assert handlers.fire_due_timers(services) == 0
        clock.current = STARTED + timedelta(hours=44)
        assert handlers.fire_due_timers(services) == 2  # the day timer and the second reminder
        detail = carla.get(f"/cases/{case['id']}").json
        assert "follow_up" in [t["element_id"] for t in detail["open_tasks"]]

    def test_a_held_case_cannot_be_worked_but_can_be_cancelled(self, api):
        sue, carla = api["sue"], api["carla"]
        case = start_held_stay(carla)
        task = carla.get(f"/cases/{case['id']}").json["open_tasks"][0]
        assert sue.post(f"/cases/{case['id']}/suspend", json={"reason": "Claim on hold pending litigation"}).status_code == 200

        refused = carla.post(f"/tasks/{task['id']}/complete", json={"data": {}})
        assert refused.status_code == 409
        assert "is suspended" in refused.json["error"]["message"] and "resume" in refused.json["error"]["message"]

        cancelled = sue.post(f"/cases/{case['id']}/cancel", json={"reason": "Settled"})
        assert cancelled.status_code == 200, cancelled.json
        detail = carla.get(f"/cases/{case['id']}").json
        assert (detail["status"], detail["open_tasks"], detail["timers"]) == ("cancelled", [], [])


class TestRefusals:
    def test_only_supervisors_hold_or_resume_a_case(self, api):
        carla = api["carla"]
        case = start_held_stay(carla)
        refused = carla.post(f"/cases/{case['id']}/suspend", json={"reason": "Transferred out"})
        assert refused.status_code == 403 and "supervisors" in refused.json["error"]["message"]
        assert carla.post(f"/cases/{case['id']}/resume", json={}).status_code == 403

    def test_the_wrong_status_is_a_conflict_naming_it(self, api):
        sue = api["sue"]
        case = start_held_stay(api["carla"])
        not_held = sue.post(f"/cases/{case['id']}/resume", json={"reason": "Back"})
        assert not_held.status_code == 409
        assert not_held.json["error"]["message"] == f"Case {case['id']} is active; only suspended cases can be resumed."
        assert sue.post(f"/cases/{case['id']}/suspend", json={"reason": "Out"}).status_code == 200
        again = sue.post(f"/cases/{case['id']}/suspend", json={"reason": "Out again"})
        assert again.status_code == 409 and "is suspended" in again.json["error"]["message"]

    def test_a_missing_reason_an_unknown_case_and_a_bad_body_are_refused(self, api):
        sue = api["sue"]
        case = start_held_stay(api["carla"])
        no_reason = sue.post(f"/cases/{case['id']}/suspend", json={})
        assert no_reason.status_code == 400
        assert no_reason.json["error"]["field_errors"] == {"reason": ["Missing data for required field."]}
        blank = sue.post(f"/cases/{case['id']}/suspend", json={"reason": "  "})
        assert blank.status_code == 400 and blank.json["error"]["field_errors"] == {"reason": ["This field is required."]}
        unknown = sue.post("/cases/999999/suspend", json={"reason": "Out"})
        assert unknown.status_code == 404 and unknown.json["error"]["message"] == "Case 999999 does not exist."
        assert sue.post("/cases/999999/resume").status_code == 404
        not_json = sue.client.post(f"/api/v1/cases/{case['id']}/resume", data="reason=back",
                                   headers={**sue.headers, "Content-Type": "text/plain"})
        assert not_json.status_code == 400
        assert sue.get(f"/cases/{case['id']}").json["status"] == "active"

    def test_the_openapi_document_describes_both_endpoints(self, api):
        paths = api["carla"].get("/openapi.json").json["paths"]
        suspend, resume = paths["/api/v1/cases/{case_id}/suspend"]["post"], paths["/api/v1/cases/{case_id}/resume"]["post"]
        assert suspend["requestBody"]["required"] is True and resume["requestBody"]["required"] is False
        assert {"403", "404", "409"} <= set(suspend["responses"]) and {"403", "404", "409"} <= set(resume["responses"])
