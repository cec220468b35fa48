"""Dates as historians write them: EDTF strings (partial, approximate, uncertain), validated and humanised.

Stored values are the normalised EDTF text. Because EDTF dates are ISO 8601 prefixes, they sort correctly
as text ("2013-02" < "2013-02-15" < "2013-03"); a qualified date such as "2017~" sorts after the exact
dates of its own period and before the next one.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache

import edtf

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
QUALIFIER_WORDS = {"~": "around", "?": "possibly", "%": "possibly around"}
# The subset of EDTF curators need: a year, year-month or full date, optional X for unknown digits,
# optionally followed by one qualifier. Intervals are expressed with separate start and end fields.
SUPPORTED = re.compile(r"^\d[\dX]{3}(-[\dX]{2}(-[\dX]{2})?)?[~?%]?$")


class DateError(ValueError):
    """Raised with a message a curator can read."""


@lru_cache(maxsize=8192)
def _parsed(value: str):
    """The edtf library's parse, remembered: it costs about 10 ms, and a form validating as the user types,
    or an import, meets the same few dates again and again. Failures are not remembered (they raise)."""
    return edtf.parse_edtf(value)


def normalise_edtf(text: str) -> str:
    """Return the canonical EDTF form of `text`, or raise DateError saying what is wrong."""
    value = text.strip()
    if not value:
        raise DateError("Date is empty")
    if not SUPPORTED.match(value):
        raise DateError(
            f"'{value}' is not a date PaxDesk understands; write 2024-05-10, 2013-02, 2017 or 2017~"
        )
    try:
        _parsed(value)
        digits = value.rstrip("~?%")
        if len(digits) == 10 and "X" not in digits:
            dt.date.fromisoformat(digits)  # the edtf library accepts 2023-02-29
    except Exception as exc:  # the edtf library raises several exception types for bad input
        raise DateError(f"'{value}' is not a real date (month 01–12, day within the month)") from exc
    return value


def bounds(value: str) -> tuple[dt.date, dt.date]:
    """Earliest and latest calendar day the EDTF value can mean."""
    parsed = _parsed(normalise_edtf(value))
    low, high = parsed.lower_strict(), parsed.upper_strict()
    return (dt.date(low.tm_year, low.tm_mon, low.tm_mday), dt.date(high.tm_year, high.tm_mon, high.tm_mday))


def ends_before(end: str, start: str) -> bool:
    """True when `end` certainly lies before `start` (its latest day is before start's earliest)."""
    return bounds(end)[1] < bounds(start)[0]


@lru_cache(maxsize=8192)
def humanise(value: str | None) -> str:
    """'2013-02' → 'February 2013', '2017~' → 'around 2017', '2024-05-10' → '10 May 2024'. Remembered: tables
    and exports show the same few dates on row after row."""
    if not value:
        return ""
    # Stored values were validated on the way in; the regex suffices here, because a full EDTF parse costs
    # about 10 ms and a table shows hundreds of dates at a time.
    if not SUPPORTED.match(value):
        return value
    qualifier = value[-1] if value[-1] in QUALIFIER_WORDS else ""
    parts = value.rstrip("~?%").split("-")
    if len(parts) > 1 and "X" not in value and not 1 <= int(parts[1]) <= 12:
        return value
    if "X" in value:
        words = value.rstrip("~?%").replace("X", "…")
    elif len(parts) == 1:
        words = parts[0]
    elif len(parts) == 2:
        words = f"{MONTHS[int(parts[1]) - 1]} {parts[0]}"
    else:
        words = f"{int(parts[2])} {MONTHS[int(parts[1]) - 1]} {parts[0]}"
    return f"{QUALIFIER_WORDS[qualifier]} {words}" if qualifier else words


def parse_exact_date(value: object) -> dt.date:
    """An exact calendar date from a date, datetime or text (2024-05-31, 31/05/2024, 30-Nov-20)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y", "%d-%b-%y", "%d-%b-%Y", "%d %B %Y", "%d %b %Y", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise DateError(f"'{text}' is not a date; write it as 2024-05-31 or 31/05/2024")
