"""Due rules on human tasks: calendar and business days, time of day, DST, variables."""
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


def test_an_unknown_time_zone_is_refused_with_an_example():
    with pytest.raises(ValueError, match="America/New_York"):
        DuePolicy.of(zone_name="Mars/Olympus")


def test_due_times_are_returned_in_utc():
    window = due({"dueIn": "PT1H"}, "2026-03-02T08:00:00-05:00")
    assert window.due_at.tzinfo == timezone.utc
