"""EDTF dates: accepted forms, refusals with reasons, humanised display, order and bounds."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.dates import DateError, ends_before, humanise, normalise_edtf, parse_exact_date


@pytest.mark.parametrize("text", ["2013-02", "2017~", "2024-05-10", "2024", "201X", "2017?", "2024-02-29"])
def test_accepted_edtf(text):
    assert normalise_edtf(f"  {text} ") == text


@pytest.mark.parametrize("text, reason", [
    ("2024-13", "not a real date"), ("2023-02-29", "not a real date"), ("abc", "not a date PaxDesk understands"),
    ("10/05/2024", "not a date PaxDesk understands"), ("", "empty"),
])
def test_refused_edtf_says_why(text, reason):
    with pytest.raises(DateError, match=reason):
        normalise_edtf(text)


@pytest.mark.parametrize("value, shown", [
    ("2013-02", "February 2013"), ("2017~", "around 2017"), ("2024-05-10", "10 May 2024"),
    ("2017?", "possibly 2017"), ("201X", "201…"), (None, ""),
])
def test_humanised(value, shown):
    assert humanise(value) == shown


def test_text_order_is_chronological_order():
    values = ["2017~", "2013-04", "2024-05-10", "2013-02", "2024", "2013-02-15", "2023~", "2024-05-11"]
    assert sorted(values) == ["2013-02", "2013-02-15", "2013-04", "2017~", "2023~", "2024", "2024-05-10",
                              "2024-05-11"]


def test_ends_before_uses_the_whole_period():
    assert ends_before("2013-01", "2013-02")
    assert not ends_before("2013-02", "2013-02-15")  # the month of February contains the 15th
    assert not ends_before("2023~", "2017~")


@given(st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31)))
def test_exact_dates_round_trip_and_sort(day):
    text = day.isoformat()
    assert normalise_edtf(text) == text
    assert humanise(text).endswith(str(day.year))
    assert (text < (day + dt.timedelta(days=1)).isoformat()) or day == dt.date(9999, 12, 31)


@pytest.mark.parametrize("value", ["2024-05-31", "31/05/2024", "31-May-24", dt.date(2024, 5, 31),
                                   dt.datetime(2024, 5, 31, 0, 0)])
def test_un_reporting_date_styles(value):
    assert parse_exact_date(value) == dt.date(2024, 5, 31)


def test_un_short_month_style():
    assert parse_exact_date("30-Nov-20") == dt.date(2020, 11, 30)
