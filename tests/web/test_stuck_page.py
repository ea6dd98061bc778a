"""The managers' stuck-case list: reasons, counts, filters, sorting, CSV, and who may see it (both databases)."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from workflows import accounts, handlers
from workflows.handlers.scan import run_stuck_scan
from workflows.ports import FlagQuery

SCAN = dict(owner="test", every=timedelta(seconds=0), idle_days=7, timer_grace=timedelta(minutes=5))


@pytest.fixture
def stuck(seed, services):
    """Three flagged cases: two overdue tasks (acute, workers' comp) and one task at risk (acute)."""
    ada = seed.case("Ada Brown", "MRN-1")
    bo = seed.case("Bo Chen", "MRN-2")
    dora = seed.case("=Dora Eng", "CLM-3", process_id="return_to_work", setting="workers_comp")
    seed.task(ada, "Admission review", due_in_hours=-30, assignee="carla", status=None)
    seed.task(bo, "Continued stay review", due_in_hours=5, at_risk_in_hours=-1)
    seed.task(dora, "Contact employer", role="nurse_case_manager", due_in_hours=-2)
    result = run_stuck_scan(services, **SCAN)
    assert result is not None
    return {"ada": ada, "bo": bo, "dora": dora}


def rows(response) -> list[tuple[str, str]]:
    page = response.get_data(as_text=True)
    return re.findall(r'<tr data-case-id="(\d+)" data-reason="([a-z_]+)"', page)


class TestTheList:
    def test_a_supervisor_sees_each_stuck_case_with_its_reason_longest_stuck_first(self, visitor, stuck):
        response = visitor("sue").get("/stuck")
        assert response.status_code == 200
        found = rows(response)
        assert (str(stuck["ada"]), "task_overdue") == found[0], "stuck 30 h: first"
        assert {(str(stuck["bo"]), "task_at_risk"), (str(stuck["dora"]), "task_overdue")} <= set(found)
        page = response.get_data(as_text=True)
        assert "Ada Brown" in page and "30 h" in page

    def test_counts_per_reason_ignore_the_reason_filter_and_the_list_follows_it(self, visitor, stuck):
        response = visitor("sue").get("/stuck?reason=task_overdue")
        page = response.get_data(as_text=True)
        assert {reason for _, reason in rows(response)} == {"task_overdue"}
        at_risk_tab = re.search(r'data-reason="task_at_risk">[^<]*<span class="count">(\d+)', page)
        assert at_risk_tab and at_risk_tab.group(1) == "1"

    def test_filters_by_setting_and_team_member(self, visitor, stuck):
        sue = visitor("sue")
        assert [case for case, _ in rows(sue.get("/stuck?setting=workers_comp"))] == [str(stuck["dora"])]
        assert [case for case, _ in rows(sue.get("/stuck?assignee=carla"))] == [str(stuck["ada"])]

    def test_sorting_by_case_number(self, visitor, stuck):
        numbers = [int(case) for case, _ in rows(visitor("sue").get("/stuck?sort=case"))]
        assert numbers == sorted(numbers)

    def test_a_value_the_page_does_not_offer_is_refused_by_name(self, visitor, stuck):
        response = visitor("sue").get("/stuck?reason=bored&page=zero")
        assert response.status_code == 400
        page = response.get_data(as_text=True)
        assert "reason" in page and "page" in page


class TestCsv:
    def test_the_export_holds_every_match_and_defuses_formulas(self, visitor, stuck):
        response = visitor("sue").get("/stuck.csv?sort=case")
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert len(table) == len(rows(visitor("sue").get("/stuck")))
        dora = next(row for row in table if row["case"] == str(stuck["dora"]))
        assert dora["subject"] == "'=Dora Eng", "a leading = would run as a formula in a spreadsheet"
        assert dora["reason"] == "Overdue task" and dora["stuck_hours"] == "2.0"


class TestWhoSeesIt:
    def test_a_case_manager_is_refused(self, visitor, stuck):
        response = visitor("carla").get("/stuck")
        assert response.status_code == 403
        assert visitor("carla").get("/stuck.csv").status_code == 403

    def test_a_supervisor_sees_only_the_settings_they_cover(self, visitor, services, stuck):
        accounts.add_user(services, username="wendy", roles=["supervisor"], settings=["workers_comp"])
        response = visitor("wendy").get("/stuck")
        assert [case for case, _ in rows(response)] == [str(stuck["dora"])]
        assert rows(visitor("wendy").get("/stuck?setting=acute_hospital")) == []


class TestApi:
    def test_the_same_list_as_json_for_a_supervisors_token(self, app, services, stuck):
        client = app.test_client()
        token = accounts.new_token(services, username="sue")
        response = client.get("/api/v1/stuck-cases?reason=task_overdue&sort=case",
                              headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.json
        body = response.json
        assert [item["case_id"] for item in body["items"]] == sorted([stuck["ada"], stuck["dora"]])
        assert body["by_reason"]["task_at_risk"] == 1 and body["total"] == 2
        assert body["items"][0]["since"].startswith("2026-03-03")

    def test_a_case_managers_token_is_refused(self, app, services, stuck):
        client = app.test_client()
        token = accounts.new_token(services, username="carla")
        assert client.get("/api/v1/stuck-cases", headers={"Authorization": f"Bearer {token}"}).status_code == 403


class TestBulkReassign:
    def test_a_supervisor_reassigns_several_tasks_and_each_refusal_is_named(self, visitor, seed, services, stuck):
        with services.uow(read_only=True) as uow:
            tasks = {uow.tasks.for_case(case_id)[0].case_id: uow.tasks.for_case(case_id)[0].id
                     for case_id in stuck.values()}
        sue = visitor("sue")
        sue.get("/stuck")
        response = sue.post("/stuck/reassign", {"task": [tasks[stuck["ada"]], tasks[stuck["bo"]], tasks[stuck["dora"]]],
                                                "assignee": "cole", "back": "/stuck?sort=case"})
        assert response.status_code == 303 and response.headers["Location"] == "/stuck?sort=case"
        page = sue.get("/stuck?sort=case").get_data(as_text=True)
        assert "2 tasks reassigned to cole" in page
        assert f"Task {tasks[stuck['dora']]} was not reassigned" in page and "nurse_case_manager" in page
        with services.uow(read_only=True) as uow:
            assert uow.tasks.get(tasks[stuck["ada"]]).assignee == "cole"
            assert uow.tasks.get(tasks[stuck["dora"]]).assignee is None
            # The list shows the new owner at once, not after the next scan.
            flags = {f.subject: f.assignee for f in uow.flags.query(FlagQuery(limit=100))}
            assert flags[f"task:{tasks[stuck['ada']]}"] == "cole" and flags[f"task:{tasks[stuck['dora']]}"] != "cole"
        kinds = [event.kind for event in handlers.get_case(services, case_id=stuck["ada"]).events]
        assert "task_assigned" in kinds

    def test_a_case_manager_cannot_reassign(self, visitor, services, stuck):
        with services.uow(read_only=True) as uow:
            bo_task = uow.tasks.for_case(stuck["bo"])[0].id
        carla = visitor("carla")
        carla.get("/inbox")
        carla.post("/stuck/reassign", {"task": [str(bo_task)], "assignee": "cole", "back": "/inbox"})
        assert "Only supervisors can reassign tasks." in carla.get("/inbox").get_data(as_text=True)
        with services.uow(read_only=True) as uow:
            assert uow.tasks.get(bo_task).assignee is None
