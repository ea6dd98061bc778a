"""The inbox: views and their counts, filters, sorting, pagination and due-time highlighting."""
from __future__ import annotations

import html

import pytest

from workflows.model import TaskStatus

from .conftest import tab_counts, task_row, task_titles

DUE_ORDER = ["Overdue review", "At risk screen", "Later today", "Friday follow up", "Next week call", "Undated note"]


@pytest.fixture
def cases(seed) -> dict[str, int]:
    """Three cases in two settings; a case manager's queue of six tasks, two claimed, one for another role."""
    ada = seed.case("Ada Brown", "MRN-100")
    ben = seed.case("Ben Cole", "MRN-200")
    dora = seed.case("Dora Eng", "CLM-300", process_id="return_to_work", setting="workers_comp")
    seed.task(ada, "Overdue review", due_in_hours=-2, priority=2, created_hours_ago=50)
    seed.task(ada, "At risk screen", due_in_hours=3, at_risk_in_hours=-1, created_hours_ago=40)
    seed.task(ben, "Later today", due_in_hours=5, priority=4, created_hours_ago=30)
    seed.task(dora, "Friday follow up", due_in_hours=48, priority=1, created_hours_ago=20)
    seed.task(dora, "Next week call", due_in_hours=24 * 6, priority=5, created_hours_ago=10)
    seed.task(ben, "Undated note", created_hours_ago=60)
    seed.task(ada, "Carla's claimed", due_in_hours=30, assignee="carla")
    seed.task(ben, "Cole's claimed", assignee="cole")
    seed.task(ada, "Advisor review", role="physician_advisor", due_in_hours=10)
    seed.task(ada, "Finished review", due_in_hours=-20, status=TaskStatus.COMPLETED)
    return {"ada": ada, "ben": ben, "dora": dora}


class TestViews:
    def test_a_case_manager_sees_their_tasks_and_their_teams_queue_with_counts(self, visitor, cases):
        browser = visitor("carla")
        mine = browser.get("/")
        assert tab_counts(mine) == {"My tasks": 1, "My team's queue": 6}
        assert task_titles(mine) == ["Carla's claimed"]
        assert task_titles(browser.get("/inbox?view=team")) == DUE_ORDER

    def test_a_case_manager_cannot_open_the_all_open_view(self, visitor, cases):
        response = visitor("carla").get("/inbox?view=all")
        assert response.status_code == 403
        assert "Only supervisors can see every open task" in response.get_data(as_text=True)

    def test_a_supervisor_also_sees_every_open_task_whoever_holds_it(self, visitor, cases):
        browser = visitor("sue")
        assert tab_counts(browser.get("/")) == {"My tasks": 0, "My team's queue": 6, "All open": 9}
        titles = task_titles(browser.get("/inbox?view=all"))
        assert set(titles) == set(DUE_ORDER) | {"Carla's claimed", "Cole's claimed", "Advisor review"}

    def test_another_role_sees_only_its_own_lane(self, visitor, cases):
        browser = visitor("pat")
        assert tab_counts(browser.get("/")) == {"My tasks": 0, "My team's queue": 1}
        assert task_titles(browser.get("/inbox?view=team")) == ["Advisor review"]

    def test_each_row_shows_the_case_subject_setting_due_priority_and_assignee(self, visitor, cases):
        page = visitor("sue").get("/inbox?view=all&q=Dora").get_data(as_text=True)
        row = task_row(page, "Friday follow up")
        assert "Dora Eng" in row and "CLM-300" in row and f"Case {cases['dora']}" in row
        assert "Workers comp" in row and "Return to work" in row
        assert '<time datetime="2026-03-06T15:00:00+00:00">Fri 6 Mar 15:00</time>' in row
        assert "in 2 d" in row and ">1</span>" in row and "Unassigned" in row

    def test_overdue_and_at_risk_tasks_are_marked(self, visitor, cases):
        page = visitor("carla").get("/inbox?view=team").get_data(as_text=True)
        rows = {title: task_row(page, title) for title in DUE_ORDER}
        assert 'class="overdue"' in rows["Overdue review"]
        assert 'class="at-risk"' in rows["At risk screen"]
        assert all('class=""' in rows[title] for title in DUE_ORDER[2:])
        assert page.count("badge-overdue") == 1 and page.count("badge-at-risk") == 1

    def test_a_case_manager_with_nothing_claimed_is_pointed_to_the_queue(self, visitor, cases):
        response = visitor("pat").get("/")
        assert task_titles(response) == []
        assert "You have no tasks. Claim one from your team's queue." in response.get_data(as_text=True)


class TestFilters:
    @pytest.mark.parametrize("query, expected", [
        ("setting=workers_comp", ["Friday follow up", "Next week call"]),
        ("process=acute_stay", ["Overdue review", "At risk screen", "Later today", "Undated note"]),
        ("due=overdue", ["Overdue review"]),
        ("due=today", ["Overdue review", "At risk screen", "Later today"]),
        ("due=week", ["Overdue review", "At risk screen", "Later today", "Friday follow up"]),
        ("priority=1", ["Friday follow up"]),
        ("q=ada", ["Overdue review", "At risk screen"]),
        ("q=mrn-200", ["Later today", "Undated note"]),
        ("q=%25", []),
        ("setting=acute_hospital&due=today&priority=4", ["Later today"]),
    ])
    def test_each_filter_narrows_the_view(self, visitor, cases, query, expected):
        assert task_titles(visitor("carla").get(f"/inbox?view=team&{query}")) == expected

    @pytest.mark.parametrize("form", ["{}", "#{}"])
    def test_the_search_finds_a_case_by_its_number(self, visitor, cases, form):
        number = form.format(cases["dora"]).replace("#", "%23")
        assert task_titles(visitor("carla").get(f"/inbox?view=team&q={number}")) == ["Friday follow up", "Next week call"]

    def test_the_counts_follow_the_filters(self, visitor, cases):
        assert tab_counts(visitor("sue").get("/inbox?view=all&due=overdue")) == {
            "My tasks": 0, "My team's queue": 1, "All open": 1,
        }

    def test_the_tabs_keep_the_filters(self, visitor, cases):
        page = visitor("carla").get("/inbox?view=team&due=week&sort=priority").get_data(as_text=True)
        assert 'href="/inbox?due=week&amp;sort=priority"' in page  # My tasks
        assert 'href="/inbox?view=team&amp;due=week&amp;sort=priority"' in page

    def test_the_filter_controls_show_the_chosen_values_and_deployed_choices(self, visitor, cases):
        page = visitor("carla").get("/inbox?view=team&setting=workers_comp&due=today").get_data(as_text=True)
        assert '<option value="workers_comp" selected>Workers comp</option>' in page
        assert '<option value="acute_hospital">Acute hospital</option>' in page
        assert '<option value="today" selected>Due today</option>' in page
        assert '<option value="return_to_work">Return to work</option>' in page

    @pytest.mark.parametrize("query, message", [
        ("due=yesterday", "due: Choose one of overdue, today, week, not 'yesterday'."),
        ("sort=colour", "sort: Choose one of due, priority, created, not 'colour'."),
        ("priority=9", "priority: Choose one of 1, 2, 3, 4, 5, not '9'."),
        ("page=0", "page: Give a page number from 1, not '0'."),
        ("page=two", "page: Give a page number from 1, not 'two'."),
        ("view=everything", "view: Choose one of mine, team, all, not 'everything'."),
    ])
    def test_a_filter_value_the_page_does_not_offer_is_refused_by_name(self, visitor, cases, query, message):
        response = visitor("carla").get(f"/inbox?{query}")
        assert response.status_code == 400
        assert message in html.unescape(response.get_data(as_text=True))


class TestSorting:
    @pytest.mark.parametrize("sort, expected", [
        ("due", DUE_ORDER),
        ("priority", ["Friday follow up", "Overdue review", "At risk screen", "Undated note", "Later today",
                      "Next week call"]),
        ("created", ["Undated note", "Overdue review", "At risk screen", "Later today", "Friday follow up",
                     "Next week call"]),
    ])
    def test_the_view_is_sorted_as_chosen(self, visitor, cases, sort, expected):
        assert task_titles(visitor("carla").get(f"/inbox?view=team&sort={sort}")) == expected


class TestPagination:
    @pytest.fixture
    def many(self, seed) -> None:
        case_id = seed.case("Ada Brown", "MRN-100")
        for number in range(1, 56):
            seed.task(case_id, f"Review {number:02d}", due_in_hours=number)

    def test_fifty_tasks_a_page_with_links_that_keep_the_filters(self, visitor, many):
        browser = visitor("carla")
        first = browser.get("/inbox?view=team&sort=due")
        page = first.get_data(as_text=True)
        assert task_titles(first) == [f"Review {n:02d}" for n in range(1, 51)]
        assert "55 tasks · page 1 of 2" in page
        assert 'href="/inbox?view=team&amp;page=2" rel="next"' in page
        second = browser.get("/inbox?view=team&page=2")
        assert task_titles(second) == [f"Review {n:02d}" for n in range(51, 56)]
        assert 'href="/inbox?view=team" rel="prev"' in second.get_data(as_text=True)
        assert tab_counts(second)["My team's queue"] == 55

    def test_a_page_past_the_end_is_empty_and_links_back(self, visitor, many):
        response = visitor("carla").get("/inbox?view=team&page=3")
        assert response.status_code == 200 and task_titles(response) == []
        assert 'rel="prev"' in response.get_data(as_text=True)


class TestSettings:
    def test_every_view_keeps_to_the_settings_the_user_covers(self, visitor, services, cases):
        from workflows import accounts

        accounts.add_user(services, username="wendy", roles=["supervisor", "case_manager"], settings=["workers_comp"])
        wendy = visitor("wendy")
        for view in ("team", "all"):
            assert set(task_titles(wendy.get(f"/inbox?view={view}"))) == {"Friday follow up", "Next week call"}, view
        assert tab_counts(wendy.get("/inbox")) == {"My tasks": 0, "My team's queue": 2, "All open": 2}
