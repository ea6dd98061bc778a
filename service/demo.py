"""Demo users and cases for `make run`: one user per role, cases in every setting at different stages.

The cases replay the opening actions of the diagrams' own process tests through the real
handlers (start, claim, complete, deliver a message), so the demo data is realistic,
satisfies the forms, and stays in step with the diagrams. The demo runs on the real clock,
so clock steps are skipped and replay stops at a task that only a timer would open.
"""
from __future__ import annotations

import itertools
import logging
import re
from datetime import date, datetime, timedelta
from pathlib import Path

from workflows import accounts, handlers
from workflows.errors import CaseworkError
from workflows.model import User
from workflows.process_tests import load_process_test

from .demo_stuck import load_stuck_cases

logger = logging.getLogger(__name__)

ACUTE, REHAB, COMP = "acute_hospital", "inpatient_rehab", "workers_comp"
DEMO_USERS = (  # username, name, roles, the settings whose cases they see
    ("carla", "Carla Reyes, RN (case manager)", ["case_manager"], [ACUTE]),
    ("sam", "Sam Okafor, MSW (social worker)", ["social_worker"], [ACUTE]),
    ("pat", "Dr. Pat Lee (physician advisor)", ["physician_advisor"], [ACUTE]),
    ("ari", "Dr. Ari Stone (attending)", ["attending"], [ACUTE]),
    ("reg", "Rene Gold (registration)", ["registration"], [ACUTE]),
    ("cole", "Cole Baker, RN (case manager)", ["case_manager"], [ACUTE]),
    ("sue", "Sue Park (case management director)", ["supervisor", "case_manager"], ["*"]),
    ("dana", "Dana Cruz (process designer)", ["designer"], ["*"]),
    ("admin", "Administrator", ["admin"], ["*"]),
    ("lena", "Lena Ito (IRF clinical liaison, benefits)", ["clinical_liaison", "benefits_coordinator"], [REHAB]),
    ("rita", "Dr. Rita Vance (rehab physician)", ["rehab_physician"], [REHAB]),
    ("nora", "Nora Bell, RN (rehab nurse, IRF-PAI)", ["rehab_nurse", "irf_pai_coordinator", "therapist"], [REHAB]),
    ("nick", "Nick Shaw, RN (workers' comp nurse case manager)", ["nurse_case_manager"], [COMP]),
    ("adam", "Adam Fox (adjuster)", ["adjuster"], [COMP]),
    ("uma", "Dr. Uma Rao (UR reviewer)", ["ur_reviewer"], [COMP]),
)

# (process test, how many of its opening actions to replay): different stages of a case.
DEMO_SCENARIOS = (
    ("acute_hospital/tests/acute_stay_medicare_inpatient_home.yaml", 0),
    ("acute_hospital/tests/acute_stay_observation_moon_then_inpatient.yaml", 2),
    ("acute_hospital/tests/acute_stay_denial_peer_to_peer_appeal.yaml", 4),
    ("acute_hospital/tests/acute_stay_60_day_stay.yaml", 6),
    ("inpatient_rehab/tests/irf_six_week_stay.yaml", 1),
    ("inpatient_rehab/tests/irf_authorization_timeout_appeal.yaml", 2),
    ("inpatient_rehab/tests/irf_interrupted_stay_returns.yaml", 3),
    ("workers_comp/tests/workers_comp_catastrophic_represented.yaml", 1),
    ("workers_comp/tests/workers_comp_two_years.yaml", 3),
    ("workers_comp/tests/workers_comp_precert_clocks.yaml", 5),
)
# Who opens a demo case, by the first word of its process id.
_OPENED_BY = {"acute": "carla", "irf": "lena", "workers": "nick"}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T[\d:.]+([+-]\d{2}:\d{2}|Z)?)?$")
_SUBJECT_NAMES = ("patient_name", "worker_name", "subject_name")
_SUBJECT_REFS = ("mrn", "claim_number", "subject_ref")


DEMO_PASSWORD = "demo"  # every demo user's, documented in the README; demo data only


def demo_token(username: str) -> str:
    """The fixed API token of a demo user (documented in the README; demo data only)."""
    return f"demo-{username}-token"


def load_demo(services, bpmn_path: str | Path) -> bool:
    """Create demo users and cases on an empty database; return whether anything was loaded."""
    with services.uow(read_only=True) as uow:
        if uow.users.list():
            return False
    for username, display_name, roles, settings in DEMO_USERS:
        accounts.add_user(services, username=username, roles=roles, display_name=display_name,
                          token=demo_token(username), password=DEMO_PASSWORD, settings=settings)
    users = _users(services)
    for number, (path, actions) in enumerate(DEMO_SCENARIOS, start=1):
        file = Path(bpmn_path) / path
        if not file.is_file():
            continue
        try:
            _replay(services, users, load_process_test(path, file.read_bytes()), actions, number)
        except CaseworkError as err:
            logger.warning("Demo case from %s stopped early: %s", path, err)
    numbers = itertools.count(len(DEMO_SCENARIOS) + 1)
    load_stuck_cases(services, bpmn_path, users,
                     lambda at, test, actions: _replay(at, users, test, actions, next(numbers)))
    return True


def _replay(services, users: dict[str, User], test, actions: int, number: int) -> int:
    """Open a case from a process test and replay its first `actions`; return the case id."""
    # The test's dates move with it, so the case looks as if it opened just now.
    offset = services.clock.now() - test.start
    data = _shifted(dict(test.data), offset)
    starter = users[_OPENED_BY.get(test.process.split("_")[0], "admin")]
    case = handlers.start_case(
        services, actor=starter, process_id=test.process, data=data,
        subject_name=str(next((data[k] for k in _SUBJECT_NAMES if data.get(k)), test.name))[:200],
        subject_ref=str(next((data[k] for k in _SUBJECT_REFS if data.get(k)), f"DEMO-{number:04d}"))[:100],
    )
    for step in _opening_actions(test.steps)[:actions]:
        if step.kind == "message":
            handlers.deliver_message(services, actor=starter, name=step.spec["message"],
                                     payload=_shifted(dict(step.spec.get("payload") or {}), offset), case_id=case.id)
            continue
        detail = handlers.get_case(services, case_id=case.id)
        task = next((t for t in detail.open_tasks if t.element_id == step.spec["complete"]), None)
        if task is None:  # it would open only after a timer the demo clock has not reached
            return case.id
        worker = next((u for u in users.values() if task.candidate_role in u.roles and u.covers(case.setting)),
                      users["admin"])
        handlers.claim_task(services, actor=worker, task_id=task.id)
        handlers.complete_task(services, actor=worker, task_id=task.id,
                               data=_shifted(dict(step.spec.get("data") or {}), offset))
    return case.id


def _shifted(value, offset: timedelta):
    """The value with every ISO 8601 date and date-time in it moved by `offset`."""
    if isinstance(value, dict):
        return {key: _shifted(item, offset) for key, item in value.items()}
    if isinstance(value, list):
        return [_shifted(item, offset) for item in value]
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            if len(value) == 10:
                return (date.fromisoformat(value) + timedelta(days=round(offset / timedelta(days=1)))).isoformat()
            return (datetime.fromisoformat(value) + offset).isoformat()
        except ValueError:
            return value
    return value


def _opening_actions(steps) -> list:
    """The complete and message steps (repeats unrolled), minus expected failures and picks among instances."""
    actions = []
    for step in _unrolled(steps):
        if step.kind in ("complete", "message") and "error" not in step.spec and not step.spec.get("where"):
            actions.append(step)
    return actions


def _unrolled(steps):
    for step in steps:
        if step.kind == "repeat":
            for _ in range(step.spec["repeat"]):
                yield from _unrolled(step.steps)
        else:
            yield step


def _users(services) -> dict[str, User]:
    with services.uow(read_only=True) as uow:
        return {username: uow.users.get_by_username(username) for username, *_ in DEMO_USERS}
