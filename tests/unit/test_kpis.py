"""The KPI definitions on a small fixed data set, every expected figure worked out by hand in the comments."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from workflows import kpis
from workflows.errors import Forbidden, InvalidInput
from workflows.handlers.kpis import kpi_report
from workflows.kpis import CaseFacts, Period, SettingFacts, Submission, TaskFacts
from workflows.model import User
from workflows.services import Services

UTC = timezone.utc
MARCH = Period(date(2026, 3, 1), date(2026, 3, 31))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def figures(kpi) -> dict[tuple[str, str], float | None]:
    return {(figure.group, figure.measure): figure.value for figure in kpi.figures}


def by_key(found: list) -> dict:
    return {kpi.key: kpi for kpi in found}


def stay(case_id: int, **data) -> CaseFacts:
    return CaseFacts(case_id, "acute_hospital", data)


def task(element_id: str, *, created: str, completed: str, due: str | None = None, by: str = "carla",
         title: str | None = None) -> TaskFacts:
    return TaskFacts("acute_hospital", element_id, title or element_id.replace("_", " ").capitalize(), at(created),
                     at(due) if due else None, at(completed), by)


ACUTE = SettingFacts(cases=[
    # LOS 3, 5 and 10 against GMLOS 4: mean LOS 6.0, index 18/12 = 1.5, excess 0 + 1 + 6 = 7.
    stay(1, discharged_at="2026-03-05T10:00:00+00:00", length_of_stay_days=3, gmlos_days=4, working_drg="193",
         discharge_disposition="home", medicare_beneficiary=True, inpatient_order_at="2026-03-02T08:00:00+00:00",
         im_delivered_at="2026-03-03T09:00:00+00:00", followup_im_needed=False),  # IM after 25 h: on time
    stay(2, discharged_at="2026-03-10T13:00:00+00:00", length_of_stay_days=5, gmlos_days=4, working_drg="193",
         discharge_disposition="snf", medicare_beneficiary=1, inpatient_order_at="2026-03-05T08:00:00+00:00",
         im_delivered_at="2026-03-07T09:00:00+00:00",  # after 49 h: late
         followup_im_needed=True, followup_im_delivered_at="2026-03-09T15:00:00+00:00",  # 22 h before discharge
         avoidable_days=[{"day": "2026-03-08", "reason": "payer"}, {"day": "2026-02-28", "reason": "physician"}]),
    stay(3, discharged_at="2026-03-20T11:59:00+00:00", length_of_stay_days=10, gmlos_days=4.0, working_drg="470",
         discharge_disposition="home", medicare_beneficiary=False),
    stay(4, discharged_at="2026-02-27T10:00:00+00:00", length_of_stay_days=2, gmlos_days=4, working_drg="193",
         medicare_beneficiary=True, inpatient_order_at="2026-02-25T08:00:00+00:00"),  # discharged before March
    stay(5, avoidable_days=[{"day": "2026-03-15", "reason": "post_acute_availability"},
                            {"day": "2026-03-16", "reason": "post_acute_availability"},
                            {"day": "2026-03-17", "reason": None}]),  # still in hospital
    # Observation from 22:00 on the 11th to the inpatient order at 08:00 on the 13th (34 h): a MOON is owed
    # by the earlier of start + 36 h (10:00 on the 13th) and the order (08:00); given at 23:00 on the 12th.
    stay(6, discharged_at="2026-03-16T12:00:00+00:00", discharge_disposition="home_health", medicare_beneficiary=True,
         observation_started_at="2026-03-11T22:00:00+00:00", inpatient_order_at="2026-03-13T08:00:00+00:00",
         moon_delivered_at="2026-03-12T23:00:00+00:00", im_delivered_at="2026-03-14T08:00:00+00:00"),
], tasks=[
    task("admission_review", created="2026-03-02T08:00", due="2026-03-03T08:00", completed="2026-03-02T10:00"),
    task("continued_stay_review", created="2026-03-03T08:00", due="2026-03-03T16:00", completed="2026-03-03T12:00",
         title="Continued-stay review"),
    task("continued_stay_review", created="2026-03-04T08:00", due="2026-03-04T16:00", completed="2026-03-04T16:00",
         title="Continued-stay review", by="cole"),  # at the due time exactly: on time
    task("continued_stay_review", created="2026-03-05T08:00", due="2026-03-05T16:00", completed="2026-03-05T18:00",
         title="Continued-stay review"),  # late
    task("discharge_patient", created="2026-03-05T08:00", completed="2026-03-05T10:00"),  # no due time
], open_overdue={"cole": 2, "sue": 1})


class TestAcuteHospital:
    @pytest.fixture
    def found(self):
        return by_key(kpis.compute("acute_hospital", ACUTE, MARCH, UTC))

    def test_length_of_stay_against_gmlos_overall_and_per_drg(self, found):
        los = found["length_of_stay"]
        assert los.population == 3, "stay 4 left in February, stays 5 and 6 have no GMLOS"
        assert figures(los) == {
            ("All stays", "Stays"): 3, ("All stays", "Mean length of stay"): 6.0, ("All stays", "Mean GMLOS"): 4.0,
            ("All stays", "LOS/GMLOS index"): 1.5, ("All stays", "Excess days"): 7.0,
            ("DRG 193", "Stays"): 2, ("DRG 193", "Mean length of stay"): 4.0, ("DRG 193", "Mean GMLOS"): 4.0,
            ("DRG 193", "LOS/GMLOS index"): 1.0, ("DRG 193", "Excess days"): 1.0,
            ("DRG 470", "Stays"): 1, ("DRG 470", "Mean length of stay"): 10.0, ("DRG 470", "Mean GMLOS"): 4.0,
            ("DRG 470", "LOS/GMLOS index"): 2.5, ("DRG 470", "Excess days"): 6.0,
        }
        index = los.cell("All stays", "LOS/GMLOS index")
        assert (index.numerator, index.denominator) == (18, 12.0)

    def test_avoidable_days_in_the_period_by_reason_on_any_stay(self, found):
        avoidable = found["avoidable_days"]
        # In March: payer 1 (stay 2), post-acute availability 2 and one with no reason (stay 5): 4 in all.
        assert avoidable.population == 4
        counted = figures(avoidable)
        assert [counted[(reason, "Avoidable days")] for reason in (
            "All reasons", "Physician", "Hospital", "Payer", "Post-acute availability", "Patient or family",
            "Not given")] == [4, 0, 0, 1, 2, 0, 1]
        assert (counted[("Payer", "Share")], counted[("Post-acute availability", "Share")]) == (25.0, 50.0)
        assert "All reasons" not in {figure.group for figure in avoidable.charted()}, "the total is no bar"

    def test_reviews_on_time_per_review_type(self, found):
        reviews = found["reviews_on_time"]
        # 4 reviews with a due time (the discharge is no review): 3 on time, the last continued-stay review late.
        assert figures(reviews) == {("All reviews", "On time"): 75.0, ("Admission review", "On time"): 100.0,
                                    ("Continued-stay review", "On time"): pytest.approx(200 / 3)}
        assert reviews.population == 4

    def test_notices_for_medicare_beneficiaries(self, found):
        notices = figures(found["notices"])
        # IM: stays 1 and 6 on time, stay 2 late -> 2 of 3; follow-up IM: stay 2 -> 1 of 1; MOON: stay 6 -> 1 of 1.
        assert notices == {
            ("IM within 2 days of the inpatient order", "On time"): pytest.approx(200 / 3),
            ("Follow-up IM before discharge", "On time"): 100.0,
            ("MOON for observation over 24 h", "On time"): 100.0,
        }
        assert found["notices"].target == 100.0

    def test_discharge_before_noon_overall_and_per_disposition(self, found):
        # 10:00 and 11:59 are before noon; 13:00 and 12:00 are not: 2 of 4.
        assert figures(found["discharge_before_noon"]) == {
            ("All stays", "Before noon"): 50.0, ("Home", "Before noon"): 100.0,
            ("Home health", "Before noon"): 0.0, ("SNF", "Before noon"): 0.0,
        }

    def test_before_noon_and_the_period_follow_the_organisations_clock(self):
        new_york = ZoneInfo("America/New_York")
        late_evening = SettingFacts(cases=[
            stay(1, discharged_at="2026-03-05T11:30:00-05:00"),  # 16:30 UTC, morning in New York
            stay(2, discharged_at="2026-03-31T22:00:00-04:00"),  # 1 April in UTC, 31 March in New York
        ])
        found = by_key(kpis.compute("acute_hospital", late_evening, MARCH, new_york))
        assert figures(found["discharge_before_noon"])[("All stays", "Before noon")] == 50.0
        assert found["discharge_before_noon"].population == 2


def irf_stay(case_id: int, admitted: str, discharged: str, *, plan: str | None = None, conferences=(),
             group: str = "stroke") -> CaseFacts:
    return CaseFacts(case_id, "inpatient_rehab", {
        "admitted_at": f"{admitted}T14:00:00+00:00", "discharged_at": f"{discharged}T11:00:00+00:00",
        "plan_of_care_completed_at": f"{plan}T20:00:00+00:00" if plan else None, "impairment_group": group,
        "idt_conferences": [{"number": n, "held_on": day} for n, day in enumerate(conferences, start=1)],
    })


class TestInpatientRehab:
    @pytest.fixture
    def found(self):
        # Admitted 2 March: day 4 is 5 March, day 8 is 9 March.
        return by_key(kpis.compute("inpatient_rehab", SettingFacts(cases=[
            irf_stay(1, "2026-03-02", "2026-03-27", plan="2026-03-05",
                     conferences=["2026-03-09", "2026-03-16", "2026-03-23"]),  # both on time
            irf_stay(2, "2026-03-02", "2026-03-12", plan="2026-03-06", conferences=["2026-03-10"],
                     group="hip_fracture"),  # plan on day 5, first conference on day 9: both late
            irf_stay(3, "2026-03-10", "2026-03-12"),  # left on day 3: owed neither a plan nor a conference
            irf_stay(4, "2026-03-01", "2026-03-20", plan="2026-03-03",
                     conferences=["2026-03-06", "2026-03-14"]),  # 8 days between conferences
            irf_stay(5, "2026-02-01", "2026-02-20", plan="2026-02-10"),  # discharged in February
        ]), MARCH, UTC))

    def test_plan_of_care_within_four_days_of_the_stays_that_owed_one(self, found):
        plan = found["plan_of_care"]
        assert plan.population == 3, "stay 3 left by day 4 without a plan; stay 5 left in February"
        assert figures(plan) == {("All stays", "Complied"): pytest.approx(200 / 3), ("Stroke", "Complied"): 100.0,
                                 ("Hip fracture", "Complied"): 0.0}

    def test_weekly_team_conferences(self, found):
        conferences = found["team_conferences"]
        # Stays 1 and 3 comply; stay 2's first conference came on day 9, stay 4's second 8 days after its first.
        assert figures(conferences) == {("All stays", "Complied"): 50.0, ("Stroke", "Complied"): pytest.approx(200 / 3),
                                        ("Hip fracture", "Complied"): 0.0}
        assert conferences.target == 100.0


def submitted(case_id: int, element_id: str, when: str, **data) -> Submission:
    return Submission(case_id, element_id, at(when), data)


class TestWorkersComp:
    @pytest.fixture
    def found(self):
        cases = [CaseFacts(1, "workers_comp", {"referral_received_at": "2026-03-02T09:00:00+00:00",
                                               "disability_start_date": "2026-02-01"}),
                 CaseFacts(2, "workers_comp", {"referral_received_at": "2026-03-05T00:00:00+00:00",
                                               "disability_start_date": "2026-02-15"}),
                 CaseFacts(3, "workers_comp", {"referral_received_at": "2026-02-20T09:00:00+00:00",
                                               "disability_start_date": "2026-01-01"})]
        submissions = [
            # Case 1: worker after 12 h (0.5 d), employer after 1 d, physician after 2 d; a later second worker contact.
            submitted(1, "contact_injured_worker", "2026-03-02T22:00", contacted_at="2026-03-02T21:00:00+00:00"),
            submitted(1, "contact_employer", "2026-03-03T10:00", contacted_at="2026-03-03T09:00:00+00:00"),
            submitted(1, "contact_treating_physician", "2026-03-04T10:00", contacted_at="2026-03-04T09:00:00+00:00"),
            submitted(1, "contact_injured_worker", "2026-03-10T10:00", contacted_at="2026-03-10T09:00:00+00:00"),
            # Case 2: represented; the attorney after 1.5 d, the employer first, after 6 h (0.25 d).
            submitted(2, "contact_worker_attorney", "2026-03-06T12:00", contacted_at="2026-03-06T12:00:00+00:00"),
            submitted(2, "contact_employer", "2026-03-05T06:00", contacted_at="2026-03-05T06:00:00+00:00"),
            # Case 3: first contact in February: not in March.
            submitted(3, "contact_injured_worker", "2026-02-21T09:00", contacted_at="2026-02-21T09:00:00+00:00"),
            # Modified duty: case 1 from 3 March (30 days); case 2 declined a plan from 1 March, accepted one from
            # 10 March (23 days). Full duty: case 1 on 31 March (58 days); case 3 in February.
            submitted(1, "plan_transitional_return_to_work", "2026-03-02T12:00", transitional_start_date="2026-03-03",
                      worker_accepted=True, transitional_duty_in_place=True),
            submitted(2, "plan_transitional_return_to_work", "2026-02-27T12:00", transitional_start_date="2026-03-01",
                      worker_accepted=False, transitional_duty_in_place=False),
            submitted(2, "plan_transitional_return_to_work", "2026-03-08T12:00", transitional_start_date="2026-03-10",
                      worker_accepted=True, transitional_duty_in_place=True),
            submitted(1, "confirm_return_to_work", "2026-03-31T12:00", return_to_work_date="2026-03-31"),
            submitted(3, "confirm_return_to_work", "2026-02-10T12:00", return_to_work_date="2026-02-10"),
        ]
        reports = [
            TaskFacts("workers_comp", "initial_assessment_report", "Initial assessment report", at("2026-03-02T09:00"),
                      at("2026-04-01T09:00"), at("2026-03-20T09:00"), "nina"),
            TaskFacts("workers_comp", "progress_report", "Progress report", at("2026-03-01T09:00"),
                      at("2026-03-06T09:00"), at("2026-03-07T09:00"), "nina"),  # late
            TaskFacts("workers_comp", "progress_report", "Progress report", at("2026-03-11T09:00"),
                      at("2026-03-16T09:00"), at("2026-03-12T09:00"), "nina"),
            TaskFacts("workers_comp", "closure_report", "Closure report", at("2026-03-11T09:00"), None,
                      at("2026-03-12T09:00"), "nina"),  # no due time
        ]
        return by_key(kpis.compute("workers_comp", SettingFacts(cases=cases, submissions=submissions, tasks=reports),
                                   MARCH, UTC))

    def test_days_to_first_contact_per_party_and_with_any(self, found):
        contact = figures(found["first_contact"])
        assert (contact[("Any party (first contact)", "Cases")], contact[("Any party (first contact)", "Mean days")],
                contact[("Any party (first contact)", "Median days")]) == (2, 0.375, 0.375)  # 0.5 and 0.25
        assert contact[("Injured worker or their attorney", "Mean days")] == 1.0  # 0.5 and 1.5
        assert contact[("Employer", "Mean days")] == 0.625  # 1.0 and 0.25
        assert (contact[("Treating physician", "Cases")], contact[("Treating physician", "Mean days")]) == (1, 2.0)

    def test_days_to_modified_and_full_return_to_work(self, found):
        back = figures(found["return_to_work"])
        assert (back[("Modified duty", "Cases")], back[("Modified duty", "Mean days")],
                back[("Modified duty", "Median days")]) == (2, 26.5, 26.5)  # 30 and 23
        assert (back[("Full duty", "Cases")], back[("Full duty", "Mean days")]) == (1, 58.0)

    def test_report_timeliness(self, found):
        assert figures(found["report_timeliness"]) == {
            ("All reports", "On time"): pytest.approx(200 / 3), ("Initial assessment report", "On time"): 100.0,
            ("Progress report", "On time"): 50.0,
        }


class TestEverySetting:
    @pytest.fixture
    def found(self):
        return by_key(kpis.compute("acute_hospital", ACUTE, MARCH, UTC))

    def test_completion_time_per_task_type(self, found):
        hours = figures(found["completion_time"])
        # Admission review 2 h; continued-stay reviews 4, 8 and 10 h; discharge 2 h: 26 h over 5 tasks.
        assert [hours[("All tasks", measure)] for measure in ("Tasks", "Mean hours", "Median hours")] == [5, 5.2, 4.0]
        assert (hours[("Continued-stay review", "Mean hours")], hours[("Continued-stay review", "Median hours")]) \
            == (pytest.approx(22 / 3), 8.0)
        assert hours[("Admission review", "Median hours")] == 2.0

    def test_overdue_tasks_per_team_member(self, found):
        overdue = figures(found["overdue_by_member"])
        # carla completed 3 timed tasks, 1 late; cole 1 on time and holds 2 open overdue; sue holds 1.
        assert [(overdue[(who, "Overdue tasks")], overdue[(who, "Open and overdue")])
                for who in ("Whole team", "carla", "cole", "sue")] == [(4, 3), (1, 0), (2, 2), (1, 1)]
        late = found["overdue_by_member"].cell("carla", "Completed late")
        assert (late.value, late.numerator, late.denominator) == (pytest.approx(100 / 3), 1, 3)
        assert overdue[("cole", "Completed late")] == 0.0 and overdue[("sue", "Completed late")] is None

    def test_a_period_with_nothing_has_no_figures_to_chart(self):
        found = by_key(kpis.compute("acute_hospital", SettingFacts(), MARCH, UTC))
        assert all(kpi.population == 0 for kpi in found.values())
        assert found["length_of_stay"].cell("All stays", "Mean length of stay").value is None

    def test_a_setting_without_kpis_of_its_own_has_the_task_kpis(self):
        assert [kpi.key for kpi in kpis.compute("home_health", SettingFacts(), MARCH, UTC)] == \
            ["completion_time", "overdue_by_member"]


class TestPeriod:
    def test_the_default_is_the_30_days_ending_today(self):
        assert Period.parse(first="", last="", today=date(2026, 3, 4)) == Period(date(2026, 2, 3), date(2026, 3, 4))

    def test_the_period_runs_from_local_midnight_to_the_midnight_after_its_last_day(self):
        zone = ZoneInfo("America/New_York")
        assert (MARCH.start(zone), MARCH.end(zone)) == (at("2026-03-01T05:00"), at("2026-04-01T04:00"))

    @pytest.mark.parametrize(("first", "last", "field"), [
        ("2026-3-1", "", "from"), ("", "yesterday", "to"), ("2026-03-05", "2026-03-04", "from"),
        ("2020-01-01", "2026-03-04", "to"),
    ])
    def test_a_bad_period_is_refused_naming_the_field(self, first, last, field):
        with pytest.raises(InvalidInput) as refused:
            Period.parse(first=first, last=last, today=date(2026, 3, 4))
        assert list(refused.value.field_errors) == [field]


class _Reader:
    def __init__(self, settings: dict[str, str]):
        self.processes = self
        self.kpis = self
        self._settings = settings
        self.overdue_asked: list[datetime] = []

    def __call__(self, **_):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def settings_by_process(self):
        return self._settings

    def case_data(self, **_):
        return []

    submissions = completed_tasks = case_data

    def open_overdue_by_assignee(self, *, setting, due_before):
        self.overdue_asked.append(due_before)
        return {}


class _Clock:
    def now(self):
        return at("2026-03-04T15:00")


class TestTheReport:
    @pytest.fixture
    def services(self):
        reader = _Reader({"acute_stay": "acute_hospital", "workers_comp_case": "workers_comp",
                          "irf_stay": "inpatient_rehab"})
        return Services(uow=reader, clock=_Clock())

    def test_a_case_manager_is_refused(self, services):
        with pytest.raises(Forbidden):
            kpi_report(services, actor=User("carla", ["case_manager"]))

    def test_a_supervisor_sees_the_settings_they_cover_in_a_fixed_order(self, services):
        everyone = kpi_report(services, actor=User("sue", ["supervisor"]))
        assert [shown.setting for shown in everyone.settings] == ["acute_hospital", "inpatient_rehab", "workers_comp"]
        assert everyone.period == Period(date(2026, 2, 3), date(2026, 3, 4))
        wendy = User("wendy", ["supervisor"], settings=["workers_comp"])
        assert [shown.setting for shown in kpi_report(services, actor=wendy).settings] == ["workers_comp"]
        assert kpi_report(services, actor=wendy, setting="acute_hospital").settings == []

    def test_open_tasks_not_yet_due_are_not_overdue_in_a_period_ending_later(self, services):
        kpi_report(services, actor=User("sue", ["supervisor"]), setting="workers_comp", last="2026-03-31")
        assert services.uow.overdue_asked == [at("2026-03-04T15:00")]
        kpi_report(services, actor=User("sue", ["supervisor"]), setting="workers_comp", last="2026-03-01")
        assert services.uow.overdue_asked[-1] == at("2026-03-02T00:00")
