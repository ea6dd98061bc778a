"""Due rules on human tasks: calendar and business days, working hours, time of day, DST, variables."""
from datetime import datetime, timedelta, timezone

import pytest

from workflows.due_rules import DuePolicy, due_window
from workflows.errors import DiagramError

NEW_YORK = DuePolicy.of(zone_name="America/New_York")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def due(properties, opened_at, *, data=None, policy=NEW_YORK, boundary=None):
    return due_window(properties, opened_at=at(opened_at), data=data or {}, policy=policy,
                      element_id="review", boundary_due_at=boundary)


class TestElapsedAndCalendarTime:
    def test_hours_are_elapsed_time_and_at_risk_is_at_eighty_percent(self):
        window = due({"dueIn": "PT24H"}, "2026-03-02T08:00:00-05:00")
        assert window.due_at == at("2026-03-03T08:00:00-05:00")
        assert window.at_risk_at == at("2026-03-02T08:00:00-05:00") + timedelta(hours=19.2)

    def test_a_day_keeps_the_local_time_of_day_across_spring_forward(self):
        window = due({"dueIn": "P1D"}, "2026-03-07T09:00:00-05:00")
        assert window.due_at == at("2026-03-08T09:00:00-04:00")

    def test_twenty_four_hours_across_spring_forward_ends_an_hour_later_on_the_wall_clock(self):
        window = due({"dueIn": "PT24H"}, "2026-03-07T09:00:00-05:00")
        assert window.due_at == at("2026-03-08T10:00:00-04:00")

    def test_a_day_keeps_the_local_time_of_day_across_fall_back(self):
        assert due({"dueIn": "P1D"}, "2026-10-31T09:00:00-04:00").due_at == at("2026-11-01T09:00:00-05:00")
        assert due({"dueIn": "PT24H"}, "2026-10-31T09:00:00-04:00").due_at == at("2026-11-01T08:00:00-05:00")

    def test_the_at_risk_fraction_is_configurable(self):
        policy = DuePolicy.of(zone_name="UTC", at_risk_fraction=0.5)
        window = due({"dueIn": "PT10H"}, "2026-03-02T08:00:00+00:00", policy=policy)
        assert window.at_risk_at == at("2026-03-02T13:00:00+00:00")


class TestBusinessDays:
    def test_friday_afternoon_plus_one_business_day_is_monday_afternoon(self):
        window = due({"dueIn": "P1D", "calendar": "business"}, "2026-03-06T15:00:00-05:00")
        assert window.due_at == at("2026-03-09T15:00:00-04:00")  # DST began on the Sunday

    def test_a_holiday_pushes_the_deadline_to_the_next_business_day(self):
        policy = DuePolicy.of(zone_name="America/New_York", holidays=["2026-03-09"])
        window = due({"dueIn": "P1D", "calendar": "business"}, "2026-03-06T15:00:00-05:00", policy=policy)
        assert window.due_at == at("2026-03-10T15:00:00-04:00")

    def test_five_business_days_over_thanksgiving(self):
        policy = DuePolicy.of(zone_name="America/New_York", holidays=["2026-11-26", "2026-11-27"])
        window = due({"dueIn": "P5D", "calendar": "business"}, "2026-11-23T10:00:00-05:00", policy=policy)
        assert window.due_at == at("2026-12-02T10:00:00-05:00")

    def test_the_business_day_is_the_local_one_not_utc(self):
        # 21:00 Friday in New York is already Saturday in UTC.
        window = due({"dueIn": "P1D", "calendar": "business"}, "2026-03-13T21:00:00-04:00")
        assert window.due_at == at("2026-03-16T21:00:00-04:00")

    def test_months_cannot_be_business_days(self):
        with pytest.raises(DiagramError, match="business-day due rules count days"):
            due({"dueIn": "P1M", "calendar": "business"}, "2026-03-02T08:00:00-05:00")


class TestBusinessHours:
    """Hours and minutes in a business-calendar rule count working time only (08:00-17:00 by default)."""

    def test_four_hours_from_friday_afternoon_are_due_on_monday_morning(self):
        window = due({"dueIn": "PT4H", "calendar": "business"}, "2026-03-06T15:00:00-05:00")
        assert window.due_at == at("2026-03-09T10:00:00-04:00")  # DST began on the Sunday

    def test_a_holiday_is_skipped_entirely(self):
        policy = DuePolicy.of(zone_name="America/New_York", holidays=["2026-03-09"])
        window = due({"dueIn": "PT4H", "calendar": "business"}, "2026-03-06T15:00:00-05:00", policy=policy)
        assert window.due_at == at("2026-03-10T10:00:00-04:00")

    @pytest.mark.parametrize("opened_at, due_at", [
        ("2026-03-02T06:30:00-05:00", "2026-03-02T12:00:00-05:00"),  # before opening
        ("2026-03-02T22:00:00-05:00", "2026-03-03T12:00:00-05:00"),  # after closing
        ("2026-03-07T10:00:00-05:00", "2026-03-09T12:00:00-04:00"),  # on a Saturday
        ("2026-03-03T03:00:00+00:00", "2026-03-03T12:00:00-05:00"),  # 22:00 the day before in New York
    ])
    def test_outside_working_hours_the_clock_starts_at_the_next_opening(self, opened_at, due_at):
        assert due({"dueIn": "PT4H", "calendar": "business"}, opened_at).due_at == at(due_at)

    def test_days_count_whole_business_days_first_then_working_hours(self):
        rule = {"dueIn": "P1DT2H", "calendar": "business"}
        assert due(rule, "2026-03-05T10:00:00-05:00").due_at == at("2026-03-06T12:00:00-05:00")
        assert due(rule, "2026-03-06T16:00:00-05:00").due_at == at("2026-03-10T09:00:00-04:00")

    def test_work_that_ends_at_closing_is_due_at_closing(self):
        window = due({"dueIn": "PT2H", "calendar": "business"}, "2026-03-06T15:00:00-05:00")
        assert window.due_at == at("2026-03-06T17:00:00-05:00")

    def test_a_task_opened_at_closing_starts_counting_at_the_next_opening(self):
        window = due({"dueIn": "PT30M", "calendar": "business"}, "2026-03-06T17:00:00-05:00")
        assert window.due_at == at("2026-03-09T08:30:00-04:00")

    def test_working_hours_stay_local_across_spring_forward(self):
        # Thursday 08:00 EST plus three working days: Thursday, Friday and Monday (EDT) until 17:00.
        window = due({"dueIn": "PT27H", "calendar": "business"}, "2026-03-05T08:00:00-05:00")
        assert window.due_at == at("2026-03-09T17:00:00-04:00")

    def test_working_hours_stay_local_across_fall_back(self):
        window = due({"dueIn": "PT4H", "calendar": "business"}, "2026-10-30T15:00:00-04:00")
        assert window.due_at == at("2026-11-02T10:00:00-05:00")
        window = due({"dueIn": "PT27H", "calendar": "business"}, "2026-10-29T08:00:00-04:00")
        assert window.due_at == at("2026-11-02T17:00:00-05:00")

    def test_the_working_hours_are_a_policy_setting(self):
        policy = DuePolicy.of(zone_name="America/New_York", working_hours="07:30-19:00")
        window = due({"dueIn": "PT4H", "calendar": "business"}, "2026-03-06T17:00:00-05:00", policy=policy)
        assert window.due_at == at("2026-03-09T09:30:00-04:00")

    def test_calendar_hours_are_still_elapsed_time(self):
        window = due({"dueIn": "PT4H"}, "2026-03-06T15:00:00-05:00")
        assert window.due_at == at("2026-03-06T19:00:00-05:00")

    def test_business_days_alone_keep_the_time_of_day_even_outside_working_hours(self):
        window = due({"dueIn": "P1D", "calendar": "business"}, "2026-03-06T21:00:00-05:00")
        assert window.due_at == at("2026-03-09T21:00:00-04:00")


class TestCalendarFromCaseData:
    def test_the_calendar_can_be_named_by_a_case_data_variable(self):
        rule = {"dueIn": "PT72H", "calendar": "ur_decision_calendar"}
        on_the_clock = due(rule, "2026-03-06T15:00:00-05:00", data={"ur_decision_calendar": "calendar"})
        assert on_the_clock.due_at == at("2026-03-09T16:00:00-04:00")  # 72 elapsed hours; clocks went forward
        in_working_hours = due(rule, "2026-03-06T15:00:00-05:00", data={"ur_decision_calendar": "Business"})
        assert in_working_hours.due_at == at("2026-03-18T15:00:00-04:00")  # 2 h on Friday, then 7 days and 7 h

    def test_calendar_may_say_calendar_outright(self):
        window = due({"dueIn": "PT4H", "calendar": "calendar"}, "2026-03-06T15:00:00-05:00")
        assert window.due_at == at("2026-03-06T19:00:00-05:00")

    @pytest.mark.parametrize("calendar, data, message", [
        ("ur_decision_calendar", {"ur_decision_calendar": "weekdays"},
         "calendar names the variable 'ur_decision_calendar', which holds 'weekdays'"),
        ("ur_decision_calendar", {}, "calendar names the variable 'ur_decision_calendar', which holds None"),
        ("business days", {}, "calendar must be \"business\", \"calendar\" or the name of a case-data variable"),
    ])
    def test_a_calendar_that_is_neither_is_refused_naming_the_task(self, calendar, data, message):
        with pytest.raises(DiagramError, match=message) as raised:
            due({"dueIn": "PT4H", "calendar": calendar}, "2026-03-06T15:00:00-05:00", data=data)
        assert raised.value.problems[0].element_id == "review"
        assert "element 'review'" in str(raised.value)


class TestTimeOfDay:
    def test_noon_the_next_day(self):
        window = due({"dueIn": "P1D", "dueTime": "12:00"}, "2026-03-03T16:30:00-05:00")
        assert window.due_at == at("2026-03-04T12:00:00-05:00")

    def test_midnight_is_the_end_of_the_day_reached(self):
        window = due({"dueIn": "P0D", "dueTime": "24:00"}, "2026-03-03T16:30:00-05:00")
        assert window.due_at == at("2026-03-04T00:00:00-05:00")

    def test_noon_the_next_business_day_from_a_friday(self):
        window = due({"dueIn": "P1D", "calendar": "business", "dueTime": "12:00"}, "2026-03-13T17:00:00-04:00")
        assert window.due_at == at("2026-03-16T12:00:00-04:00")

    def test_noon_the_next_day_across_spring_forward_is_noon_on_the_new_offset(self):
        # Saturday 7 March 2026 16:30 EST; clocks go forward on Sunday 8 March at 02:00.
        window = due({"dueIn": "P1D", "dueTime": "12:00"}, "2026-03-07T16:30:00-05:00")
        assert window.due_at == at("2026-03-08T12:00:00-04:00") == at("2026-03-08T16:00:00+00:00")

    def test_midnight_across_fall_back_is_local_midnight(self):
        # Sunday 1 November 2026 has 25 hours in New York: midnight at its end is 05:00 UTC.
        window = due({"dueIn": "P0D", "dueTime": "24:00"}, "2026-11-01T00:30:00-04:00")
        assert window.due_at == at("2026-11-02T00:00:00-05:00") == at("2026-11-02T05:00:00+00:00")

    def test_noon_the_next_business_day_over_a_holiday_weekend_and_a_dst_change(self):
        # Friday 6 March 2026 (EST) + 1 business day, Monday 9 March a holiday: Tuesday noon, EDT.
        policy = DuePolicy.of(zone_name="America/New_York", holidays=["2026-03-09"])
        window = due({"dueIn": "P1D", "calendar": "business", "dueTime": "12:00"}, "2026-03-06T15:00:00-05:00", policy=policy)
        assert window.due_at == at("2026-03-10T12:00:00-04:00")

    def test_a_time_of_day_that_is_not_one_is_refused(self):
        with pytest.raises(DiagramError, match="dueTime must be a time of day"):
            due({"dueIn": "P1D", "dueTime": "noon"}, "2026-03-03T16:30:00-05:00")


class TestClockStartAndParameters:
    def test_the_clock_can_start_at_a_moment_in_the_case_data(self):
        window = due({"dueIn": "P2D", "dueFrom": "inpatient_order_at"}, "2026-03-03T09:00:00-05:00",
                     data={"inpatient_order_at": "2026-03-02T22:15:00-05:00"})
        assert window.starts_at == at("2026-03-02T22:15:00-05:00")
        assert window.due_at == at("2026-03-04T22:15:00-05:00")

    def test_a_moment_without_offset_is_local_time(self):
        window = due({"dueIn": "PT36H", "dueFrom": "observation_started_at"}, "2026-03-03T09:00:00-05:00",
                     data={"observation_started_at": "2026-03-02T10:00:00"})
        assert window.due_at == at("2026-03-03T22:00:00-05:00")

    def test_the_duration_can_be_a_policy_parameter_in_the_case_data(self):
        window = due({"dueIn": "admission_review_due"}, "2026-03-02T08:00:00-05:00",
                     data={"admission_review_due": "PT12H"})
        assert window.due_at == at("2026-03-02T20:00:00-05:00")

    def test_a_parameter_whose_name_starts_with_p_is_still_a_variable(self):
        window = due({"dueIn": "provider_selection_due"}, "2026-03-02T08:00:00-05:00",
                     data={"provider_selection_due": "PT8H"})
        assert window.due_at == at("2026-03-02T16:00:00-05:00")

    @pytest.mark.parametrize("properties, data, message", [
        ({"dueIn": "1 day"}, {}, "dueIn must be an ISO 8601 duration"),
        ({"dueIn": "review_due"}, {}, "holds None rather than a duration"),
        ({"dueIn": "P1D", "dueFrom": "discharged_at"}, {}, "no value for it"),
        ({"dueIn": "P1D", "dueFrom": "discharged_at"}, {"discharged_at": "soon"}, "not an ISO 8601 date-time"),
        ({"dueIn": "P1X"}, {}, "not an ISO 8601 duration"),
        ({"dueIn": "P"}, {}, "holds None rather than a duration"),
    ])
    def test_a_broken_rule_names_the_task_and_what_is_wrong(self, properties, data, message):
        with pytest.raises(DiagramError, match=message) as raised:
            due(properties, "2026-03-02T08:00:00-05:00", data=data)
        assert raised.value.problems[0].element_id == "review"


class TestBoundaryTimer:
    def test_a_task_without_a_rule_is_due_when_its_boundary_timer_fires(self):
        boundary = at("2026-03-03T08:00:00+00:00")
        window = due({}, "2026-03-02T08:00:00+00:00", boundary=boundary)
        assert (window.due_at, window.at_risk_at) == (boundary, at("2026-03-02T08:00:00+00:00") + timedelta(hours=19.2))

    def test_a_task_with_neither_has_no_due_time(self):
        assert due({}, "2026-03-02T08:00:00+00:00") is None

    def test_a_due_rule_wins_over_the_boundary_timer(self):
        window = due({"dueIn": "PT1H"}, "2026-03-02T08:00:00+00:00", boundary=at("2026-03-09T08:00:00+00:00"))
        assert window.due_at == at("2026-03-02T09:00:00+00:00")


def test_the_policy_defaults_to_working_eight_to_five():
    assert str(DuePolicy().working_hours) == "08:00-17:00"
    assert DuePolicy.of(working_hours=None).working_hours == DuePolicy().working_hours
    assert DuePolicy.of(working_hours=" ").working_hours == DuePolicy().working_hours  # an empty setting


def test_bad_working_hours_are_refused_naming_the_text():
    with pytest.raises(ValueError, match="'17:00-08:00'"):
        DuePolicy.of(zone_name="America/New_York", working_hours="17:00-08:00")


def test_an_unknown_time_zone_is_refused_with_an_example():
    with pytest.raises(ValueError, match="America/New_York"):
        DuePolicy.of(zone_name="Mars/Olympus")


def test_due_times_are_returned_in_utc():
    window = due({"dueIn": "PT1H"}, "2026-03-02T08:00:00-05:00")
    assert window.due_at.tzinfo == timezone.utc
