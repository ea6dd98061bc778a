"""The KPI page, its CSV and its JSON on a small fixed data set, with figures worked out by hand (both databases).

The clock stands at 2026-03-04 15:00 UTC (the organisation's zone), so the default period is
3 February to 4 March 2026.
"""
from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime, timezone

import pytest

from workflows import accounts
from workflows.model import Case, CaseEvent, CaseStatus, HumanTask, TaskStatus


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.fixture
def facts(seed, services):
    """Two acute stays, two IRF stays and a workers' comp case, with their tasks and submitted forms."""
    def case(process_id: str, setting: str, opened: str, data: dict, *, status=CaseStatus.ACTIVE, closed=None) -> int:
        if process_id not in seed.versions:
            seed.process(process_id, setting)
        with services.uow() as uow:
            added = uow.cases.add(Case(
                process_version_id=seed.versions[process_id], process_id=process_id, state="{}", status=status,
                opened_at=at(opened), opened_by="carla", setting=setting, data=data,
                closed_at=at(closed) if closed else None,
            ))
            uow.commit()
        return added.id

    def task(case_id: int, element_id: str, title: str, *, created: str, completed: str | None, due: str | None,
             who: str = "carla") -> None:
        with services.uow() as uow:
            uow.tasks.add(HumanTask(
                case_id=case_id, task_ref=f"{element_id}-{created}", element_id=element_id, title=title,
                candidate_role="case_manager", created_at=at(created), due_at=at(due) if due else None,
                status=TaskStatus.COMPLETED if completed else TaskStatus.CLAIMED, assignee=who,
                completed_at=at(completed) if completed else None, completed_by=who if completed else None,
            ))
            uow.commit()

    def submitted(case_id: int, element_id: str, when: str, data: dict) -> None:
        with services.uow() as uow:
            uow.events.append(CaseEvent(case_id, at(when), "carla", "task_completed",
                                        {"task_id": 0, "element_id": element_id, "title": element_id, "data": data}))
            uow.commit()

    # Acute: LOS 3 and 7 against GMLOS 4 -> mean 5.0, index 10/8 = 1.25, excess 0 + 3 = 3. IM: 25 h (on time)
    # and 49 h (late). Discharged at 10:00 and 14:00: one before noon.
    first = case("acute_stay", "acute_hospital", "2026-02-25T08:00", {
        "discharged_at": "2026-03-02T10:00:00+00:00", "length_of_stay_days": 3, "gmlos_days": 4, "working_drg": "193",
        "discharge_disposition": "home", "medicare_beneficiary": True,
        "inpatient_order_at": "2026-02-27T08:00:00+00:00", "im_delivered_at": "2026-02-28T09:00:00+00:00"})
    second = case("acute_stay", "acute_hospital", "2026-02-24T08:00", {
        "discharged_at": "2026-03-03T14:00:00+00:00", "length_of_stay_days": 7, "gmlos_days": 4, "working_drg": "193",
        "discharge_disposition": "snf", "medicare_beneficiary": True,
        "inpatient_order_at": "2026-02-26T08:00:00+00:00", "im_delivered_at": "2026-02-28T09:00:00+00:00",
        "avoidable_days": [{"day": "2026-03-01", "reason": "payer", "note": ""}]})
    # Closed before the period, and a cancelled one: neither counts.
    case("acute_stay", "acute_hospital", "2026-01-01T08:00", {
        "discharged_at": "2026-01-20T10:00:00+00:00", "length_of_stay_days": 19, "gmlos_days": 4},
        status=CaseStatus.COMPLETED, closed="2026-02-01T10:00")
    case("acute_stay", "acute_hospital", "2026-03-01T08:00", {
        "discharged_at": "2026-03-02T10:00:00+00:00", "length_of_stay_days": 1, "gmlos_days": 4},
        status=CaseStatus.CANCELLED, closed="2026-03-02T11:00")
    # Reviews: one late (73 h, by carla), one on time (4 h, by cole); carla also holds an open overdue review.
    task(first, "admission_review", "Admission review", created="2026-02-27T08:00", due="2026-02-28T08:00",
         completed="2026-03-02T09:00")
    task(second, "continued_stay_review", "Continued-stay review", created="2026-03-01T08:00",
         due="2026-03-01T16:00", completed="2026-03-01T12:00", who="cole")
    task(second, "continued_stay_review", "Continued-stay review", created="2026-03-04T06:00",
         due="2026-03-04T08:00", completed=None)

    # IRF: the first stay on time on both counts; the second's plan came on day 6 and its first conference on day 10.
    case("irf_stay", "inpatient_rehab", "2026-02-10T08:00", {
        "admitted_at": "2026-02-10T14:00:00+00:00", "discharged_at": "2026-03-03T11:00:00+00:00",
        "plan_of_care_completed_at": "2026-02-12T10:00:00+00:00", "impairment_group": "stroke",
        "idt_conferences": [{"held_on": "2026-02-16"}, {"held_on": "2026-02-23"}, {"held_on": "2026-03-02"}]})
    case("irf_stay", "inpatient_rehab", "2026-02-20T08:00", {
        "admitted_at": "2026-02-20T14:00:00+00:00", "discharged_at": "2026-03-04T09:00:00+00:00",
        "plan_of_care_completed_at": "2026-02-25T10:00:00+00:00", "impairment_group": "stroke",
        "idt_conferences": [{"held_on": "2026-03-01"}]})

    # Workers' comp: worker reached after 12 h (0.5 days), employer after 1 day; back at full duty after 30 days.
    claim = case("workers_comp_case", "workers_comp", "2026-03-02T09:00", {
        "referral_received_at": "2026-03-02T09:00:00+00:00", "disability_start_date": "2026-02-01"})
    submitted(claim, "contact_injured_worker", "2026-03-02T22:00", {"contacted_at": "2026-03-02T21:00:00+00:00"})
    submitted(claim, "contact_employer", "2026-03-03T10:00", {"contacted_at": "2026-03-03T09:00:00+00:00"})
    submitted(claim, "confirm_return_to_work", "2026-03-03T12:00", {"return_to_work_date": "2026-03-03"})
    task(claim, "progress_report", "Progress report", created="2026-03-02T09:00", due="2026-03-03T09:00",
         completed="2026-03-02T11:00")
    task(claim, "odd_task", "=HYPERLINK(\"http://x\")", created="2026-03-02T09:00", due=None,
         completed="2026-03-03T09:00")


def section(response, setting: str, key: str) -> str:
    page = response.get_data(as_text=True)
    found = re.search(rf'<section class="panel kpi" id="{setting}-{key}".*?</section>', page, re.S)
    assert found, f"No {key} section for {setting}"
    return found.group(0)


def table(part: str) -> dict[str, list[str]]:
    """A KPI table's rows: group -> the cells' text."""
    return {html.unescape(group): [html.unescape(cell) for cell in re.findall(r'<td class="num">([^<]*)</td>', cells)]
            for group, cells in re.findall(r'<th scope="row">([^<]*)</th>(.*?)</tr>', part, re.S)}


def settings_shown(response) -> list[str]:
    return re.findall(r'<section class="kpi-setting"[^>]*data-setting="([a-z_]+)"', response.get_data(as_text=True))


class TestThePage:
    def test_the_figures_of_each_setting_over_the_last_30_days(self, visitor, facts):
        response = visitor("sue").get("/kpis")
        assert response.status_code == 200
        assert settings_shown(response) == ["acute_hospital", "inpatient_rehab", "workers_comp"]
        page = response.get_data(as_text=True)
        assert 'value="2026-02-03"' in page and 'value="2026-03-04"' in page
        # Stays, mean LOS, mean GMLOS, index, excess days.
        los = table(section(response, "acute_hospital", "length_of_stay"))
        assert los["All stays"] == ["2", "5.0", "4.0", "1.25", "3"]
        assert table(section(response, "acute_hospital", "notices"))["IM within 2 days of the inpatient order"] == \
            ["50.0% (1 of 2)"]
        assert table(section(response, "acute_hospital", "discharge_before_noon"))["All stays"] == ["50.0% (1 of 2)"]
        assert table(section(response, "acute_hospital", "reviews_on_time"))["All reviews"] == ["50.0% (1 of 2)"]
        assert table(section(response, "acute_hospital", "avoidable_days"))["Payer"] == ["1", "100.0% (1 of 1)"]
        # Overdue tasks, completed late, open and overdue.
        assert table(section(response, "acute_hospital", "overdue_by_member"))["carla"] == ["2", "100.0% (1 of 1)", "1"]
        assert table(section(response, "acute_hospital", "completion_time"))["All tasks"] == ["2", "38.5", "38.5"]
        assert table(section(response, "inpatient_rehab", "plan_of_care"))["All stays"] == ["50.0% (1 of 2)"]
        assert table(section(response, "inpatient_rehab", "team_conferences"))["Stroke"] == ["50.0% (1 of 2)"]
        contact = table(section(response, "workers_comp", "first_contact"))
        assert contact["Any party (first contact)"] == ["1", "0.5", "0.5"]
        assert table(section(response, "workers_comp", "return_to_work"))["Full duty"] == ["1", "30.0", "30.0"]
        assert table(section(response, "workers_comp", "report_timeliness"))["All reports"] == ["100.0% (1 of 1)"]

    def test_each_chart_is_inline_svg_named_for_screen_readers_with_how_it_is_counted(self, visitor, facts):
        response = visitor("sue").get("/kpis")
        part = section(response, "acute_hospital", "length_of_stay")
        svg = re.search(r"<svg\b[^>]*>", part).group(0)
        assert 'role="img"' in svg and "All stays 1.25" in svg
        assert "<title>Length of stay against GMLOS, LOS/GMLOS index: All stays 1.25" in part
        assert "<text" in part, "text stays text (svg.fonttype none)"
        assert "How this is counted." in part and "GMLOS" in part
        assert "<?xml" not in response.get_data(as_text=True)

    def test_a_period_with_nothing_says_so_instead_of_drawing_an_empty_chart(self, visitor, facts):
        response = visitor("sue").get("/kpis?from=2025-01-01&to=2025-01-31&setting=acute_hospital")
        assert settings_shown(response) == ["acute_hospital"]
        part = section(response, "acute_hospital", "length_of_stay")
        assert "No cases in this period" in part and "<svg" not in part

    @pytest.mark.parametrize(("query", "field"), [
        ("from=2026-03-05&to=2026-03-01", "from"), ("to=4%20March", "to"), ("from=2026-02-30", "from"),
    ])
    def test_a_bad_period_is_refused_naming_the_field(self, visitor, facts, query, field):
        response = visitor("sue").get(f"/kpis?{query}")
        assert response.status_code == 400
        assert f"{field}: " in html.unescape(response.get_data(as_text=True))

    def test_supervisors_find_it_in_the_menu(self, visitor, facts):
        assert 'href="/kpis"' in visitor("sue").get("/inbox").get_data(as_text=True)
        assert 'href="/kpis"' not in visitor("carla").get("/inbox").get_data(as_text=True)


class TestCsv:
    def test_one_row_per_figure_with_the_page_figures_and_formulas_defused(self, visitor, facts):
        response = visitor("sue").get("/kpis.csv?from=2026-02-03&to=2026-03-04")
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert 'filename="kpis-2026-02-03-to-2026-03-04.csv"' in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        index = next(row for row in rows if (row["setting"], row["kpi"], row["measure"], row["group"]) ==
                     ("acute_hospital", "length_of_stay", "LOS/GMLOS index", "All stays"))
        assert (float(index["value"]), index["unit"], float(index["numerator"]), float(index["denominator"])) == \
            (1.25, "index", 10, 8)
        contact = next(row for row in rows if row["kpi"] == "first_contact" and row["measure"] == "Mean days"
                       and row["group"] == "Employer")
        assert float(contact["value"]) == 1.0
        groups = {row["group"] for row in rows if row["kpi"] == "completion_time"}
        assert "'=HYPERLINK(\"http://x\")" in groups, "a leading = would run as a formula in a spreadsheet"


class TestJson:
    def test_the_same_figures_for_a_supervisors_token(self, app, services, facts):
        token = accounts.new_token(services, username="sue")
        response = app.test_client().get("/api/v1/kpis?from=2026-02-03&to=2026-03-04&setting=inpatient_rehab",
                                         headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.json
        body = response.json
        assert body["period"] == {"from": "2026-02-03", "to": "2026-03-04"}
        [rehab] = body["settings"]
        plan = next(kpi for kpi in rehab["kpis"] if kpi["key"] == "plan_of_care")
        assert plan["target"] == 100.0 and "day 4" in plan["how_counted"]
        assert {(f["group"], f["value"], f["numerator"], f["denominator"]) for f in plan["figures"]} == {
            ("All stays", 50.0, 1, 2), ("Stroke", 50.0, 1, 2)}

    def test_bad_dates_and_case_managers_are_refused(self, app, services, facts):
        client = app.test_client()
        sue = {"Authorization": f"Bearer {accounts.new_token(services, username='sue')}"}
        refused = client.get("/api/v1/kpis?from=2026-03-05&to=2026-03-01", headers=sue)
        assert refused.status_code == 400 and list(refused.json["error"]["field_errors"]) == ["from"]
        carla = {"Authorization": f"Bearer {accounts.new_token(services, username='carla')}"}
        assert client.get("/api/v1/kpis", headers=carla).status_code == 403

    def test_the_endpoint_is_in_the_openapi_document(self, app):
        assert "/api/v1/kpis" in app.test_client().get("/api/v1/openapi.json").json["paths"]


class TestWhoSeesIt:
    def test_a_case_manager_is_refused(self, visitor, facts):
        assert visitor("carla").get("/kpis").status_code == 403
        assert visitor("carla").get("/kpis.csv").status_code == 403

    def test_a_supervisor_sees_only_the_settings_they_cover(self, visitor, services, facts):
        accounts.add_user(services, username="wendy", roles=["supervisor"], settings=["workers_comp"])
        wendy = visitor("wendy")
        assert settings_shown(wendy.get("/kpis")) == ["workers_comp"]
        assert settings_shown(wendy.get("/kpis?setting=acute_hospital")) == []
        rows = list(csv.DictReader(io.StringIO(wendy.get("/kpis.csv?setting=acute_hospital").get_data(as_text=True))))
        assert rows == []
        assert {row["setting"] for row in csv.DictReader(io.StringIO(wendy.get("/kpis.csv").get_data(as_text=True)))} \
            == {"workers_comp"}
