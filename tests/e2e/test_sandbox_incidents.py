"""Escape attempts run by the real service: each becomes an incident naming its cause, and nothing else happens.

Deployment refuses what the compile-time check forbids, so two kinds of attempt get in:
those that pass the check and are refused only at run time (deployed normally), and
forbidden ones written straight into a stored process version, the way a version deployed
before a rule existed would be. Each runs once when a person completes the task before
the script (through the API) and once when the scheduler fires the timer before it. The
case keeps exactly the data it had, the worker serves the next request, and a good case
still runs to its first human task.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape

import pytest

from service import create_app
from service.jobs import timer_policy
from tests.e2e.conftest import REPO
from tests.unit.test_engine import SCRIPT_PROCESS
from workflows.handlers.timers import fire_due_timers
from workflows.model import ProcessVersion

TIMER_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="scripted" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="wait" name="An hour later"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition id="t1"><bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:scriptTask id="the_script" name="The script"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="after" name="After"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait" />
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="the_script" />
    <bpmn:sequenceFlow id="f3" sourceRef="the_script" targetRef="after" />
    <bpmn:sequenceFlow id="f4" sourceRef="after" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
GOOD_PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="good" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="score" name="Score"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>score = 2 + 2</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="after" name="After"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="score" />
    <bpmn:sequenceFlow id="f2" sourceRef="score" targetRef="after" />
    <bpmn:sequenceFlow id="f3" sourceRef="after" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""

# Pass the compile-time check; refused (or harmless) only when they run. (script, what the incident says)
RUN_TIME = {
    "computed-getattr": ("found = list(map(getattr, [mrn], ['__class__']))", "'getattr' is not available"),
    "format-walk": ("template = '{0.__class__.__base__}'\nfound = template.format(mrn)", "format"),
    "huge-string": ("big = 'x' * 10 ** 9", "value too large"),
    "ljust-on-the-type": ("big = str.ljust('a', 10 ** 9)", "value too large"),
    "endless-loop": ("while True:\n    pass", "longer than 0.3 s"),
    "self-extending-list": ("seen = [1]\nfound = any(map(seen.append, seen))", "longer than 0.3 s"),
    "recursion": ("def again():\n    return again()\nagain()", "recursion went too deep"),
    "builtins-via-get-value": ("m = get_value(*['builtins'])\nsecret = m.open('/etc/passwd').read()",
                               "has no attribute 'open'"),
    "shared-reference-bomb": ("row = [0] * 1000000\ntable = [row] * 1000000", "value too large"),
    "unstorable-value": ("pending = (n for n in [1])", "holds a generator"),
}
# Forbidden at deployment; written straight into a stored version.
COMPILE_TIME = {
    "import-os": ("import os\nleaked = os.getcwd()", "imports are not allowed"),
    "read-passwd": ("secret = open('/etc/passwd').read()", "'open' is not available"),
    "subclasses": ("found = ().__class__.__base__.__subclasses__()", "__class__"),
    "function-globals": ("found = (lambda: 0).__globals__", "__globals__"),
}
ATTEMPTS = {**{name: (*attempt, False) for name, attempt in RUN_TIME.items()},
            **{name: (*attempt, True) for name, attempt in COMPILE_TIME.items()}}
START_DATA = {"mrn": "MRN-1", "visits": [1, 2]}


class MovableClock:
    def __init__(self):
        self.current = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self.current


@pytest.fixture
def app(database_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return create_app({
        "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test", "SCHEDULER_ENABLED": False,
        "SCRIPT_TIME_LIMIT_SECONDS": 0.3, "BPMN_PATH": str(REPO / "bpmn"), "CLOCK": MovableClock(),
        "TIMER_RETRY_MINUTES": [],  # the first failure of a timer is its incident
    })


def put_in_place(app, as_user, process_id: str, template: str, script: str, *, stored: bool) -> None:
    """Deploy `template` running `script` as `process_id`; a forbidden script goes straight into a stored version."""
    text = template.replace('id="scripted"', f'id="{process_id}"')
    files = {f"{process_id}.bpmn": text.replace("{script}", "x = 1" if stored else escape(script))}
    response = as_user("dana").post("/process-versions", json={"name": process_id, "files": files})
    assert response.status_code == 201, response.json
    if stored:
        services = app.extensions["casework"]
        with services.uow() as uow:
            deployed = uow.processes.latest(process_id)
            uow.processes.add(ProcessVersion(
                process_id=process_id, version=deployed.version + 1, content_hash=f"sha256:stored-{process_id}",
                files={f"{process_id}.bpmn": text.replace("{script}", escape(script)).encode()},
                name=process_id, setting=deployed.setting, deployed_by="dana", deployed_at=services.clock.now(),
            ))
            uow.commit()


def assert_contained(sue, case: dict, before: dict, attempt: str, cause: str) -> None:
    detail = sue.get(f"/cases/{case['id']}").json
    [incident] = detail["incidents"]
    assert incident["kind"] == "script" and incident["element_id"] == "the_script", attempt
    assert cause in incident["message"], (attempt, incident["message"])
    assert detail["data"] == before["data"], f"{attempt}: the case's data is as it was"
    assert detail["version"] == before["version"] and detail["status"] == "active", attempt
    assert "root:x:0" not in str(detail) and "Traceback" not in str(detail), attempt
    assert sue.get("/tasks").status_code == 200, f"{attempt}: the worker still serves requests"


def assert_a_good_case_still_runs(as_user) -> None:
    sue = as_user("sue")
    case = sue.post("/cases", json={"process_id": "good", "data": {"mrn": "MRN-2"}})
    assert case.status_code == 201, case.json
    detail = sue.get(f"/cases/{case.json['id']}").json
    assert [task["element_id"] for task in detail["open_tasks"]] == ["after"]
    assert detail["data"] == {"mrn": "MRN-2", "score": 4}


@pytest.fixture
def good_process(as_user):
    response = as_user("dana").post("/process-versions", json={"name": "good", "files": {"good.bpmn": GOOD_PROCESS}})
    assert response.status_code == 201, response.json


class TestEscapeAttemptsBecomeIncidents:
    def test_when_a_person_completes_the_task_before_the_script(self, app, as_user, good_process):
        sue = as_user("sue")
        for index, (attempt, (script, cause, stored)) in enumerate(ATTEMPTS.items()):
            process_id = f"person_{index}"
            put_in_place(app, as_user, process_id, SCRIPT_PROCESS, script, stored=stored)
            case = sue.post("/cases", json={"process_id": process_id, "data": START_DATA}).json
            before = sue.get(f"/cases/{case['id']}").json
            [task] = before["open_tasks"]

            response = sue.post(f"/tasks/{task['id']}/complete", json={"data": {"note": "typed by hand"}})
            assert response.status_code == 422, (attempt, response.json)
            assert "the_script" in response.json["error"]["message"] and response.json["error"]["incident_id"]
            assert_contained(sue, case, before, attempt, cause)
            assert [t["id"] for t in sue.get(f"/cases/{case['id']}").json["open_tasks"]] == [task["id"]], attempt
            assert_a_good_case_still_runs(as_user)

    def test_when_the_scheduler_fires_the_timer_before_the_script(self, app, as_user, good_process):
        services, sue = app.extensions["casework"], as_user("sue")
        for index, (attempt, (script, cause, stored)) in enumerate(ATTEMPTS.items()):
            process_id = f"timer_{index}"
            put_in_place(app, as_user, process_id, TIMER_PROCESS, script, stored=stored)
            case = sue.post("/cases", json={"process_id": process_id, "data": START_DATA}).json
            before = sue.get(f"/cases/{case['id']}").json
            assert [timer["status"] for timer in before["timers"]] == ["pending"], attempt

            services.clock.current += timedelta(hours=2)
            assert fire_due_timers(services, policy=timer_policy(app.config)) == 0, attempt
            assert_contained(sue, case, before, attempt, cause)
            after = sue.get(f"/cases/{case['id']}").json
            assert after["timers"] == [] and after["open_tasks"] == [], f"{attempt}: the timer failed, nothing opened"
            assert_a_good_case_still_runs(as_user)
