"""Demo users and cases for `make run`: one user per role, cases at different stages."""
from __future__ import annotations

from workflows import accounts, handlers
from workflows.errors import CaseworkError
from workflows.model import User

DEMO_USERS = (
    ("carla", "Carla Reyes, RN (case manager)", ["case_manager"]),
    ("sam", "Sam Okafor, MSW (social worker)", ["social_worker"]),
    ("pat", "Dr. Pat Lee (physician advisor)", ["physician_advisor"]),
    ("sue", "Sue Park (supervisor)", ["supervisor", "case_manager"]),
    ("dana", "Dana Cruz (process designer)", ["designer"]),
    ("admin", "Administrator", ["admin"]),
)

DEMO_CASES = (
    ("Maria Gonzalez", "MRN-100234", {"payer": "Medicare", "order_type": "inpatient"}, None),
    ("James Carter", "MRN-100871", {"payer": "Aetna", "order_type": "observation"}, {
        "status_recommendation": "observation", "criteria_met": False, "expected_midnights": 1,
    }),
    ("Linh Tran", "MRN-101442", {"payer": "Blue Cross", "order_type": "inpatient"}, {
        "status_recommendation": "inpatient", "criteria_met": True, "expected_midnights": 4,
    }),
)


def demo_token(username: str) -> str:
    """The fixed API token of a demo user (documented in the README; demo data only)."""
    return f"demo-{username}-token"


def load_demo(services) -> bool:
    """Create demo users and cases on an empty database; return whether anything was loaded."""
    with services.uow(read_only=True) as uow:
        if uow.users.list():
            return False
    for username, display_name, roles in DEMO_USERS:
        accounts.add_user(services, username=username, roles=roles, display_name=display_name, token=demo_token(username))
    carla = _user(services, "carla")
    for subject_name, subject_ref, data, admission_review in DEMO_CASES:
        try:
            case = handlers.start_case(
                services, actor=carla, process_id="acute_utilization_review", data=data,
                subject_name=subject_name, subject_ref=subject_ref,
            )
        except CaseworkError:
            return True
        if admission_review is not None:
            detail = handlers.get_case(services, case_id=case.id)
            handlers.complete_task(services, actor=carla, task_id=detail.open_tasks[0].id, data=admission_review)
    return True


def _user(services, username: str) -> User:
    with services.uow(read_only=True) as uow:
        return uow.users.get_by_username(username)
