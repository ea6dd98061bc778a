"""GET /metrics: operational counts in Prometheus text format, for the metrics token or an admin's API token."""
from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from workflows import accounts
from workflows.model import CaseFlag, CaseStatus, FlagReason, Incident, IncidentStatus, TaskStatus, Timer, TimerStatus

from .conftest import NOW

METRICS_TOKEN = "metrics-secret-7f3a"


def scrape(client, token: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of the metrics page, by name and labels."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.get_data(as_text=True)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def samples(scraped, name: str) -> dict[frozenset, float]:
    return {labels: value for (sample_name, labels), value in scraped.items() if sample_name == name}


def labelled(**labels) -> frozenset:
    return frozenset(labels.items())


@pytest.fixture
def admin_token(services) -> str:
    return accounts.add_user(services, username="ada", roles=["admin"])[1]


@pytest.fixture
def operations(seed, services):
    """Acute: 2 active cases, 1 suspended, 1 completed; workers' comp: 1 active; tasks, an incident, timers, flags."""
    first = seed.case("Ada Brown", "MRN-1")
    second = seed.case("Ben Cole", "MRN-2")
    suspended = seed.case("Cy Dunn", "MRN-3")
    completed = seed.case("Di Eve", "MRN-4")
    seed.case("Ed Fox", "WC-1", process_id="wc_claim", setting="workers_comp")
    seed.task(first, "Admission review", due_in_hours=-2)
    seed.task(first, "Discharge plan", due_in_hours=4)
    seed.task(second, "Physician review", role="physician_advisor", assignee="pat")
    seed.task(completed, "Closing note", due_in_hours=-30, status=TaskStatus.COMPLETED)
    with services.uow() as uow:
        for case_id, status in ((suspended, CaseStatus.SUSPENDED), (completed, CaseStatus.COMPLETED)):
            case = uow.cases.get(case_id)
            case.status = status
            uow.cases.save(case)
        uow.incidents.add(Incident(case_id=second, kind="script", message="Division by zero", created_at=NOW))
        uow.incidents.add(Incident(case_id=first, kind="script", message="Fixed", created_at=NOW,
                                   status=IncidentStatus.RESOLVED))
        for case_id, ref, due_at, status in (
                (first, "t1", NOW - timedelta(seconds=90), TimerStatus.PENDING),
                (second, "t2", NOW + timedelta(hours=1), TimerStatus.PENDING),
                # A suspended case's timer waits on purpose: it does not make the scheduler late.
                (suspended, "t3", NOW - timedelta(hours=5), TimerStatus.PENDING),
                (second, "t4", NOW - timedelta(days=1), TimerStatus.FAILED)):
            uow.timers.add(Timer(case_id=case_id, task_ref=ref, element_id=ref, due_at=due_at, status=status))
        uow.flags.replace_all([
            CaseFlag(case_id=first, reason=FlagReason.TASK_OVERDUE, subject="task:1", since=NOW, detected_at=NOW,
                     setting="acute_hospital", process_id="acute_stay"),
            CaseFlag(case_id=second, reason=FlagReason.INCIDENT, subject="incident:1", since=NOW, detected_at=NOW,
                     setting="acute_hospital", process_id="acute_stay"),
        ], now=NOW)
        uow.commit()


class TestCounts:
    def test_each_gauge_counts_the_seeded_cases_tasks_incidents_and_timers(self, app, operations, admin_token):
        scraped = scrape(app.test_client(), admin_token)

        assert samples(scraped, "casework_cases") == {
            labelled(status="active", setting="acute_hospital"): 2,
            labelled(status="suspended", setting="acute_hospital"): 1,
            labelled(status="completed", setting="acute_hospital"): 1,
            labelled(status="cancelled", setting="acute_hospital"): 0,
            labelled(status="error", setting="acute_hospital"): 0,
            labelled(status="active", setting="workers_comp"): 1,
            labelled(status="suspended", setting="workers_comp"): 0,
            labelled(status="completed", setting="workers_comp"): 0,
            labelled(status="cancelled", setting="workers_comp"): 0,
            labelled(status="error", setting="workers_comp"): 0,
        }
        assert samples(scraped, "casework_open_tasks") == {
            labelled(setting="acute_hospital", candidate_role="case_manager"): 2,
            labelled(setting="acute_hospital", candidate_role="physician_advisor"): 1,
        }
        assert samples(scraped, "casework_overdue_tasks") == {
            labelled(setting="acute_hospital"): 1, labelled(setting="workers_comp"): 0,
        }
        assert samples(scraped, "casework_open_incidents") == {
            labelled(setting="acute_hospital"): 1, labelled(setting="workers_comp"): 0,
        }
        assert samples(scraped, "casework_stuck_cases") == {
            labelled(reason=reason.value): 1 if reason in (FlagReason.TASK_OVERDUE, FlagReason.INCIDENT) else 0
            for reason in FlagReason
        }
        assert scraped[("casework_timers_pending", frozenset())] == 3
        assert scraped[("casework_timers_failed", frozenset())] == 1

    def test_timer_lag_is_how_long_the_oldest_due_timer_of_an_active_case_has_waited(
            self, app, operations, admin_token):
        assert scrape(app.test_client(), admin_token)[("casework_timer_lag_seconds", frozenset())] == 90

    def test_an_empty_database_reports_zeros_and_no_lag(self, app, admin_token):
        scraped = scrape(app.test_client(), admin_token)
        assert samples(scraped, "casework_cases") == {} and samples(scraped, "casework_open_tasks") == {}
        assert scraped[("casework_timers_pending", frozenset())] == 0
        assert scraped[("casework_timer_lag_seconds", frozenset())] == 0

    def test_every_metric_has_help_and_type_lines(self, app, admin_token):
        page = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {admin_token}"})
        families = {family.name: family for family in text_string_to_metric_families(page.get_data(as_text=True))}
        assert set(families) == {
            "casework_cases", "casework_open_tasks", "casework_overdue_tasks", "casework_open_incidents",
            "casework_stuck_cases", "casework_timers_pending", "casework_timer_lag_seconds", "casework_timers_failed",
        }
        assert all(family.type == "gauge" and family.documentation for family in families.values())


class TestAccess:
    @pytest.fixture
    def client(self, app):
        app.config["METRICS_TOKEN"] = METRICS_TOKEN
        return app.test_client()

    def refused(self, response) -> None:
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.mimetype == "text/plain" and "Authorization: Bearer" in response.get_data(as_text=True)

    def test_a_scrape_without_a_token_is_refused(self, client):
        self.refused(client.get("/metrics"))

    def test_a_case_managers_api_token_is_refused(self, client, services):
        _, token = accounts.add_user(services, username="mia", roles=["case_manager", "supervisor"])
        self.refused(client.get("/metrics", headers={"Authorization": f"Bearer {token}"}))

    def test_a_wrong_metrics_token_is_refused(self, client):
        self.refused(client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}x"}))

    def test_a_deactivated_admins_token_is_refused(self, client, services, admin_token):
        with services.uow() as uow:
            user = uow.users.get_by_username("ada")
            user.active = False
            uow.users.update(user)
            uow.commit()
        self.refused(client.get("/metrics", headers={"Authorization": f"Bearer {admin_token}"}))

    @pytest.mark.parametrize("role", ["admin", "system"])
    def test_an_admin_or_system_users_api_token_is_served(self, client, services, role):
        _, token = accounts.add_user(services, username="ops", roles=[role])
        response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"

    def test_the_metrics_token_is_served(self, client):
        assert scrape(client, METRICS_TOKEN)[("casework_timer_lag_seconds", frozenset())] == 0
