"""The web pages on a real database (SQLite file or PostgreSQL), with a fixed clock and seeded tasks."""
from __future__ import annotations

import html
import itertools
import re
from datetime import datetime, timedelta, timezone

import pytest

from service import create_app
from service.web.sessions import session_for
from workflows import accounts
from workflows.model import Case, CaseStatus, HumanTask, ProcessVersion, TaskStatus

# A Wednesday afternoon: "this week" runs from Monday 2 March to Sunday 8 March.
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery staple"
USERS = {
    "carla": ["case_manager"],
    "cole": ["case_manager"],
    "pat": ["physician_advisor"],
    "sue": ["supervisor", "case_manager"],
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_REFS = itertools.count(1)


class FixedClock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture(scope="session")
def password_hash() -> str:
    # scrypt is slow on purpose: hash the shared test password once.
    return accounts.hash_password(PASSWORD)


@pytest.fixture
def app(database_url, tmp_path, monkeypatch, password_hash):
    monkeypatch.chdir(tmp_path)
    app = create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test",
        "SCHEDULER_ENABLED": False,
        "CLOCK": FixedClock(),
    })
    services = app.extensions["casework"]
    for username, roles in USERS.items():
        accounts.add_user(services, username=username, roles=roles, display_name=username.title())
        with services.uow() as uow:
            user = uow.users.get_by_username(username)
            user.password_hash = password_hash
            uow.users.update(user)
            uow.commit()
    yield app
    services.uow.dispose()


class Visitor:
    """A browser session: follows what a person does, posting forms with the page's CSRF token."""

    def __init__(self, client):
        self.client = client
        self.token: str | None = None

    def get(self, path: str, **kwargs):
        response = self.client.get(path, **kwargs)
        found = _CSRF.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, path: str, data: dict | None = None, *, with_token: bool = True, **kwargs):
        data = dict(data or {})
        if with_token:
            if self.token is None:
                self.get("/signin")
            data.setdefault("csrf_token", self.token)
        return self.client.post(path, data=data, **kwargs)

    def sign_in(self, username: str, password: str = PASSWORD, **extra):
        self.get("/signin")
        return self.post("/signin", {"username": username, "password": password, **extra})


@pytest.fixture
def visitor(app):
    def make(username: str | None = None) -> Visitor:
        visitor = Visitor(app.test_client())
        if username is not None:
            # Signing in checks the password hash (slow on purpose); the sign-in tests go through the form.
            services = app.extensions["casework"]
            user = accounts.active_user(services, username=username)
            with visitor.client.session_transaction() as session:
                session.update(session_for(user, services.clock.now()) if user else {"username": username})
            visitor.get("/inbox")
        return visitor
    return make


class Seed:
    """Cases and inbox rows written straight to the database, with times relative to NOW."""

    def __init__(self, app):
        self.uow = app.extensions["casework"].uow
        self.versions: dict[str, int] = {}

    def process(self, process_id: str, setting: str) -> int:
        with self.uow() as uow:
            version = uow.processes.add(ProcessVersion(
                process_id=process_id, version=1, content_hash=f"sha256:{process_id}", files={},
                name=process_id, setting=setting, deployed_by="dana", deployed_at=NOW - timedelta(days=30),
            ))
            uow.commit()
        self.versions[process_id] = version.id
        return version.id

    def case(self, subject_name: str, subject_ref: str, *, process_id: str = "acute_stay",
             setting: str = "acute_hospital") -> int:
        if process_id not in self.versions:
            self.process(process_id, setting)
        with self.uow() as uow:
            case = uow.cases.add(Case(
                process_version_id=self.versions[process_id], process_id=process_id, state="{}",
                status=CaseStatus.ACTIVE, opened_at=NOW - timedelta(days=3), opened_by="carla",
                subject_name=subject_name, subject_ref=subject_ref, setting=setting,
            ))
            uow.commit()
        return case.id

    def task(self, case_id: int, title: str, *, role: str = "case_manager", due_in_hours: float | None = None,
             at_risk_in_hours: float | None = None, created_hours_ago: float = 1, priority: int = 3,
             assignee: str | None = None, status: TaskStatus | None = None) -> int:
        with self.uow() as uow:
            task = uow.tasks.add(HumanTask(
                case_id=case_id, task_ref=f"ref-{next(_REFS)}", element_id=title.lower().replace(" ", "_"), title=title,
                candidate_role=role, created_at=NOW - timedelta(hours=created_hours_ago), priority=priority,
                status=status or (TaskStatus.CLAIMED if assignee else TaskStatus.OPEN), assignee=assignee,
                due_at=NOW + timedelta(hours=due_in_hours) if due_in_hours is not None else None,
                at_risk_at=NOW + timedelta(hours=at_risk_in_hours) if at_risk_in_hours is not None else None,
            ))
            uow.commit()
        return task.id


@pytest.fixture
def seed(app) -> Seed:
    return Seed(app)


def task_row(response, title: str) -> str:
    """The HTML of the inbox row of the task with this title."""
    page = response if isinstance(response, str) else response.get_data(as_text=True)
    for row in re.findall(r"<tr[^>]*data-task-id[^>]*>.*?</tr>", page, re.S):
        if re.search(rf'<td class="task"><a href="[^"]*">{re.escape(title)}</a>', row):
            return row
    raise AssertionError(f"No inbox row for the task {title!r}")


def task_titles(response) -> list[str]:
    """The task titles of an inbox page's rows, in order."""
    page = response.get_data(as_text=True)
    return [html.unescape(title.strip()) for title in re.findall(r'<td class="task"><a href="[^"]*">([^<]+)', page)]


def tab_counts(response) -> dict[str, int]:
    """Each inbox view's label and count, as the tabs show them."""
    page = response.get_data(as_text=True)
    return {html.unescape(label.strip()): int(count) for label, count in
            re.findall(r'<a href="[^"]*"(?: aria-current="page")?>\s*([^<]+?) <span class="count"[^>]*>(\d+)</span>', page)}


@pytest.fixture
def services(app):
    return app.extensions["casework"]


@pytest.fixture
def outsider(services) -> str:
    """wes: a case manager who covers only workers' compensation cases; returns his API token."""
    _, token = accounts.add_user(services, username="wes", roles=["case_manager"], settings=["workers_comp"])
    return token
