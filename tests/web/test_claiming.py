"""Claiming and unclaiming from the inbox: the task moves between views, and a lost race reads plainly."""
from __future__ import annotations

import html

import pytest

from .conftest import tab_counts, task_row, task_titles


@pytest.fixture
def review(seed) -> int:
    case_id = seed.case("Ada Brown", "MRN-100")
    seed.task(case_id, "Discharge screen", due_in_hours=30)
    return seed.task(case_id, "Admission review", due_in_hours=2)


def flashes(response) -> str:
    return html.unescape(response.get_data(as_text=True).split('<div class="flashes">')[1].split("</div>")[0])


class TestClaiming:
    def test_claiming_moves_the_task_from_the_team_queue_to_my_tasks_and_returns_to_the_same_view(
            self, visitor, review):
        browser = visitor("carla")
        view = "/inbox?view=team&due=today&sort=priority"
        browser.get(view)
        response = browser.post(f"/tasks/{review}/claim", {"back": view})
        assert response.status_code == 303 and response.headers["Location"] == view
        after = browser.get(view)
        assert "You claimed “Admission review”" in flashes(after)
        assert task_titles(after) == [] and tab_counts(after) == {"My tasks": 1, "My team's queue": 0}
        mine = browser.get("/")
        assert task_titles(mine) == ["Admission review"]
        assert "carla" in task_row(mine, "Admission review")

    def test_a_second_user_claiming_the_same_task_is_told_who_has_it(self, visitor, review):
        carla, cole = visitor("carla"), visitor("cole")
        cole.get("/inbox?view=team")  # cole's page still offers the claim
        carla.post(f"/tasks/{review}/claim", {"back": "/inbox?view=team"})
        response = cole.post(f"/tasks/{review}/claim", {"back": "/inbox?view=team"})
        assert response.status_code == 303 and response.headers["Location"] == "/inbox?view=team"
        page = cole.get("/inbox?view=team")
        assert f"Task {review} is already claimed by carla." in flashes(page)
        assert 'role="alert"' in page.get_data(as_text=True)
        assert task_titles(page) == ["Discharge screen"]

    def test_a_user_without_the_tasks_role_is_refused_with_a_reason(self, visitor, review):
        pat = visitor("pat")
        pat.post(f"/tasks/{review}/claim", {"back": "/"})
        assert f"Task {review} is for the case_manager role, which you do not hold." in flashes(pat.get("/"))

    def test_claiming_a_task_that_does_not_exist_says_so(self, visitor, review):
        carla = visitor("carla")
        carla.post("/tasks/9999/claim", {"back": "/"})
        assert "Task 9999 does not exist." in flashes(carla.get("/"))

    def test_the_way_back_never_leaves_the_site(self, visitor, review):
        response = visitor("carla").post(f"/tasks/{review}/claim", {"back": "https://evil.example/"})
        assert response.headers["Location"] == "/inbox"

    def test_a_signed_out_visitor_cannot_claim(self, visitor, review, app):
        browser = visitor()
        browser.get("/signin")
        response = browser.post(f"/tasks/{review}/claim", {"back": "/"})
        assert response.status_code == 303 and response.headers["Location"] == "/signin"
        with app.extensions["casework"].uow(read_only=True) as uow:
            assert uow.tasks.get(review).assignee is None


class TestUnclaiming:
    def test_unclaiming_puts_the_task_back_in_the_team_queue(self, visitor, review):
        browser = visitor("carla")
        browser.post(f"/tasks/{review}/claim", {"back": "/"})
        browser.get("/")
        response = browser.post(f"/tasks/{review}/unclaim", {"back": "/"})
        assert response.status_code == 303 and response.headers["Location"] == "/"
        page = browser.get("/")
        assert "You put “Admission review” (case " in flashes(page)
        assert ") back in the case_manager queue." in flashes(page)
        assert task_titles(page) == [] and tab_counts(page) == {"My tasks": 0, "My team's queue": 2}
        assert "Admission review" in task_titles(visitor("cole").get("/inbox?view=team"))

    def test_only_the_assignee_or_a_supervisor_can_unclaim(self, visitor, review):
        visitor("carla").post(f"/tasks/{review}/claim", {"back": "/"})
        cole = visitor("cole")
        cole.post(f"/tasks/{review}/unclaim", {"back": "/"})
        assert "only they or a supervisor can release it" in flashes(cole.get("/"))
        sue = visitor("sue")
        page = sue.get("/inbox?view=all").get_data(as_text=True)
        assert f'action="/tasks/{review}/unclaim"' in page
        sue.post(f"/tasks/{review}/unclaim", {"back": "/inbox?view=all"})
        assert "Unassigned" in task_row(sue.get("/inbox?view=all"), "Admission review")

    def test_the_inbox_offers_claim_on_open_tasks_and_unclaim_on_mine(self, visitor, review):
        browser = visitor("carla")
        browser.post(f"/tasks/{review}/claim", {"back": "/"})
        assert f'action="/tasks/{review}/unclaim"' in browser.get("/").get_data(as_text=True)
        team = browser.get("/inbox?view=team").get_data(as_text=True)
        assert f'action="/tasks/{review}/claim"' not in team and team.count('action="/tasks/') == 1
