"""Due-date arithmetic: durations, business days, working hours and lengths of stay."""
from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import pytest

from workflows.calendar import (
    WorkingHours,
    add_business_days,
    add_duration,
    add_working_time,
    business_days_between,
    is_business_day,
    length_of_stay,
    parse_datetime,
    parse_duration,
    parse_time_of_day,
)

FRIDAY = date(2026, 3, 6)
SATURDAY = date(2026, 3, 7)
MONDAY = date(2026, 3, 9)
EASTERN = timezone(timedelta(hours=-5))


def naive_add_business_days(start: date, days: int, holidays: set[date]) -> date:
    step = 1 if days >= 0 else -1
    day, left = start, abs(days)
    while left:
        day += timedelta(days=step)
        if day.weekday() < 5 and day not in holidays:
            left -= 1
    return day


class TestAddBusinessDays:
    def test_a_business_day_after_friday_is_monday(self):
        assert add_business_days(FRIDAY, 1) == MONDAY

    def test_counting_from_a_weekend_starts_on_monday(self):
        assert add_business_days(SATURDAY, 1) == MONDAY
        assert add_business_days(SATURDAY, 0) == SATURDAY

    def test_five_business_days_is_a_calendar_week(self):
        assert add_business_days(FRIDAY, 5) == date(2026, 3, 13)

    def test_holidays_are_skipped_even_when_they_follow_each_other(self):
        assert add_business_days(FRIDAY, 1, [MONDAY]) == date(2026, 3, 10)
        assert add_business_days(FRIDAY, 1, [MONDAY, date(2026, 3, 10)]) == date(2026, 3, 11)

    def test_a_holiday_on_a_weekend_changes_nothing(self):
        assert add_business_days(FRIDAY, 1, [SATURDAY]) == MONDAY

    def test_holidays_may_be_iso_text_from_task_data(self):
        assert add_business_days(FRIDAY, 1, ["2026-03-09"]) == date(2026, 3, 10)

    def test_negative_days_count_backwards(self):
        assert add_business_days(MONDAY, -1) == FRIDAY
        assert add_business_days(MONDAY, -1, [FRIDAY]) == date(2026, 3, 5)

    def test_the_time_of_day_and_timezone_are_kept(self):
        start = datetime(2026, 3, 6, 16, 45, tzinfo=EASTERN)
        assert add_business_days(start, 1) == datetime(2026, 3, 9, 16, 45, tzinfo=EASTERN)

    def test_the_result_matches_counting_one_day_at_a_time(self):
        holidays = {date(2026, 3, 9), date(2026, 3, 10), date(2026, 4, 3), date(2026, 5, 25), date(2026, 3, 14)}
        for offset in range(14):
            start = date(2026, 3, 1) + timedelta(days=offset)
            for days in (-23, -6, -1, 0, 1, 4, 5, 6, 11, 47):
                assert add_business_days(start, days, holidays) == naive_add_business_days(start, days, holidays)

    def test_a_fractional_or_absurd_count_is_refused(self):
        with pytest.raises(TypeError):
            add_business_days(FRIDAY, 1.5)
        with pytest.raises(ValueError, match="outside the supported calendar"):
            add_business_days(FRIDAY, 10**9)


def naive_add_working_time(start: datetime, minutes: int, holidays: set[date], hours: WorkingHours) -> datetime:
    moment, left = start, minutes
    while left:
        midnight = datetime.combine(moment.date(), datetime.min.time())
        working_day = moment.weekday() < 5 and moment.date() not in holidays
        if working_day and midnight + hours.opens <= moment < midnight + hours.closes:
            left -= 1
        moment += timedelta(minutes=1)
    return moment


class TestAddWorkingTime:
    def test_four_hours_from_friday_afternoon_end_on_monday_morning(self):
        assert add_working_time(datetime(2026, 3, 6, 15, 0), timedelta(hours=4)) == datetime(2026, 3, 9, 10, 0)

    def test_a_holiday_is_skipped_entirely(self):
        assert add_working_time(datetime(2026, 3, 6, 15, 0), timedelta(hours=4),
                                holidays=["2026-03-09"]) == datetime(2026, 3, 10, 10, 0)

    def test_before_opening_the_clock_starts_at_opening(self):
        assert add_working_time(datetime(2026, 3, 2, 6, 30), timedelta(hours=4)) == datetime(2026, 3, 2, 12, 0)

    def test_after_closing_the_clock_starts_at_the_next_opening(self):
        assert add_working_time(datetime(2026, 3, 2, 22, 0), timedelta(hours=4)) == datetime(2026, 3, 3, 12, 0)

    def test_on_a_weekend_or_holiday_the_clock_starts_at_the_next_opening(self):
        assert add_working_time(datetime(2026, 3, 7, 10, 0), timedelta(hours=4)) == datetime(2026, 3, 9, 12, 0)
        assert add_working_time(datetime(2026, 11, 26, 10, 0), timedelta(hours=1),
                                holidays=["2026-11-26", "2026-11-27"]) == datetime(2026, 11, 30, 9, 0)

    def test_work_that_ends_at_closing_is_due_at_closing_not_at_the_next_opening(self):
        assert add_working_time(datetime(2026, 3, 6, 15, 0), timedelta(hours=2)) == datetime(2026, 3, 6, 17, 0)
        assert add_working_time(datetime(2026, 3, 2, 8, 0), timedelta(hours=18)) == datetime(2026, 3, 3, 17, 0)

    def test_starting_exactly_at_closing_counts_from_the_next_opening(self):
        assert add_working_time(datetime(2026, 3, 6, 17, 0), timedelta(hours=1)) == datetime(2026, 3, 9, 9, 0)

    def test_nothing_to_count_leaves_the_moment_alone(self):
        assert add_working_time(datetime(2026, 3, 7, 22, 0), timedelta(0)) == datetime(2026, 3, 7, 22, 0)

    def test_the_working_hours_are_the_organisations(self):
        long_day = WorkingHours.parse("07:30-19:00")
        assert add_working_time(datetime(2026, 3, 6, 18, 0), timedelta(hours=2),
                                hours=long_day) == datetime(2026, 3, 9, 8, 30)
        round_the_clock = WorkingHours.parse("00:00-24:00")
        assert add_working_time(datetime(2026, 3, 6, 23, 0), timedelta(hours=2),
                                hours=round_the_clock) == datetime(2026, 3, 9, 1, 0)

    def test_long_durations_count_whole_working_days(self):
        # 100 working days of 9 hours from a Monday morning, no holidays: 20 weeks later, Friday evening.
        assert add_working_time(datetime(2026, 3, 2, 8, 0), timedelta(hours=900)) == datetime(2026, 7, 17, 17, 0)

    def test_the_result_matches_counting_one_minute_at_a_time(self):
        rng = random.Random(7)
        holidays = {date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 20)}
        for _ in range(150):
            hours = rng.choice([WorkingHours(), WorkingHours.parse("07:30-19:00"), WorkingHours.parse("22:00-24:00")])
            start = datetime(2026, 3, 1) + timedelta(minutes=rng.randrange(0, 20 * 24 * 60, 15))
            minutes = rng.randrange(1, 40 * 60, 5)
            expected = naive_add_working_time(start, minutes, holidays, hours)
            assert add_working_time(start, timedelta(minutes=minutes), holidays=holidays, hours=hours) == expected, (
                start, minutes, hours)

    def test_negative_or_timezone_aware_input_is_refused(self):
        with pytest.raises(ValueError, match="cannot be negative"):
            add_working_time(datetime(2026, 3, 2, 9, 0), timedelta(hours=-1))
        with pytest.raises(ValueError, match="local wall clock"):
            add_working_time(datetime(2026, 3, 2, 9, 0, tzinfo=EASTERN), timedelta(hours=1))


class TestWorkingHours:
    def test_the_default_is_eight_to_five(self):
        assert WorkingHours() == WorkingHours.parse("08:00-17:00")
        assert str(WorkingHours()) == "08:00-17:00"

    def test_text_is_parsed_into_opening_and_closing(self):
        hours = WorkingHours.parse(" 07:30 - 19:00 ")
        assert (hours.opens, hours.closes) == (timedelta(hours=7, minutes=30), timedelta(hours=19))
        assert WorkingHours.parse("00:00-24:00").closes == timedelta(hours=24)
        assert str(WorkingHours.parse("7:30-24:00")) == "07:30-24:00"

    @pytest.mark.parametrize("text", ["17:00-08:00", "08:00-08:00", "9-5", "08:00", "08:00-25:00", "08:60-17:00",
                                      "24:00-24:00", "", "eight to five"])
    def test_bad_text_is_refused_naming_it(self, text):
        with pytest.raises(ValueError) as raised:
            WorkingHours.parse(text)
        assert f"'{text}'" in str(raised.value) and 'e.g. "08:00-17:00"' in str(raised.value)


class TestParseTimeOfDay:
    def test_hours_and_minutes_since_midnight(self):
        assert parse_time_of_day("12:00") == timedelta(hours=12)
        assert parse_time_of_day("7:05") == timedelta(hours=7, minutes=5)
        assert parse_time_of_day("24:00") == timedelta(hours=24)

    @pytest.mark.parametrize("text", ["noon", "24:30", "25:00", "12:60", "12", "12:00:00"])
    def test_anything_else_is_refused(self, text):
        with pytest.raises(ValueError, match="not a time of day"):
            parse_time_of_day(text)


class TestBusinessDaysBetween:
    def test_a_week_holds_five_business_days(self):
        assert business_days_between(date(2026, 3, 2), MONDAY) == 5

    def test_holidays_and_weekends_are_not_counted(self):
        assert business_days_between(date(2026, 3, 2), MONDAY, [date(2026, 3, 4), SATURDAY]) == 4
        assert business_days_between(FRIDAY, date(2026, 3, 8)) == 0

    def test_an_earlier_end_gives_a_negative_count(self):
        assert business_days_between(MONDAY, date(2026, 3, 2)) == -5

    def test_it_inverts_add_business_days(self):
        holidays = [date(2026, 3, 10), date(2026, 4, 6)]
        for days in (0, 1, 3, 9, 30):
            assert business_days_between(MONDAY, add_business_days(MONDAY, days, holidays), holidays) == days

    def test_datetimes_count_by_their_calendar_day(self):
        assert business_days_between(datetime(2026, 3, 6, 23, 0), datetime(2026, 3, 9, 1, 0)) == 1


class TestIsBusinessDay:
    def test_weekdays_are_business_days_unless_they_are_holidays(self):
        assert is_business_day(MONDAY)
        assert not is_business_day(SATURDAY)
        assert not is_business_day(MONDAY, [MONDAY])
        assert not is_business_day(datetime(2026, 3, 9, 8, 0), ["2026-03-09"])


class TestDurations:
    def test_a_month_is_the_length_of_the_month_it_starts_in(self):
        assert add_duration(date(2026, 1, 15), "P1M") == date(2026, 2, 15)
        assert add_duration(date(2026, 2, 15), "P1M") == date(2026, 3, 15)
        assert add_duration(date(2024, 2, 15), "P1M") == date(2024, 3, 15)
        assert add_duration(date(2026, 3, 1), "P1Y2M") == date(2027, 5, 1)

    def test_time_durations_add_to_datetimes(self):
        start = datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
        assert add_duration(start, "PT24H") == start + timedelta(days=1)
        assert add_duration(start, "P1DT1H30M") == start + timedelta(days=1, hours=1, minutes=30)
        assert add_duration(start, "P2W") == start + timedelta(weeks=2)
        assert add_duration("2026-03-01T09:30:00+00:00", "P1D") == start + timedelta(days=1)

    def test_parse_duration_returns_the_parts(self):
        assert parse_duration("P1Y2M3DT4H5M6S") == {
            "years": 1, "months": 2, "days": 3, "hours": 4, "minutes": 5, "seconds": 6,
        }

    @pytest.mark.parametrize("text", ["1D", "P", "PT", "P1X", "P1Y2W", "banana", "", "-P1D", "P1H", "P100000Y", 12])
    def test_a_bad_duration_is_refused_with_a_readable_message(self, text):
        with pytest.raises(ValueError, match="duration|longer than"):
            add_duration(date(2026, 3, 1), text)

    def test_a_time_of_day_duration_cannot_be_added_to_a_date(self):
        with pytest.raises(ValueError, match="a date has no time of day"):
            add_duration(date(2026, 3, 1), "PT1H")


class TestLengthOfStay:
    def test_a_stay_counts_the_midnights_crossed(self):
        assert length_of_stay(datetime(2026, 3, 1, 8, 0), datetime(2026, 3, 1, 20, 0)) == 0
        assert length_of_stay(datetime(2026, 3, 1, 23, 0), datetime(2026, 3, 2, 1, 0)) == 1
        assert length_of_stay(date(2026, 2, 1), date(2026, 3, 1)) == 28

    def test_midnights_are_counted_in_the_timezone_of_admission(self):
        admitted = datetime(2026, 3, 1, 20, 0, tzinfo=EASTERN)
        discharged = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)
        assert length_of_stay(admitted, discharged) == 0

    def test_a_discharge_before_admission_is_refused(self):
        with pytest.raises(ValueError, match="before admission"):
            length_of_stay(date(2026, 3, 2), date(2026, 3, 1))


class TestParseDatetime:
    def test_iso_text_with_a_zulu_suffix_is_utc(self):
        assert parse_datetime("2026-03-01T09:30:00Z") == datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)

    def test_a_date_alone_is_its_midnight(self):
        assert parse_datetime("2026-03-01") == datetime(2026, 3, 1)

    def test_bad_text_is_refused_with_an_example(self):
        with pytest.raises(ValueError, match="not an ISO 8601 date"):
            parse_datetime("next tuesday")
