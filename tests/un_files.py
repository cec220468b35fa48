"""UN contribution workbooks for import tests, written as the UN's data hub writes them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import xlsxwriter

HUB = ["contribution_id", "contributing_country", "isocode3", "m49_code", "mission_acronym", "personnel_type",
       "female_personnel", "male_personnel", "last_reporting_date"]


def un_file(path: Path, rows: list[tuple], reporting_date: dt.datetime = dt.datetime(2023, 1, 31)) -> Path:
    """One sheet of (country, iso3, mission, personnel type, female, male) rows on `reporting_date`."""
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Contributions")
    dates = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, HUB)
    for index, (country, iso, mission, kind, female, male) in enumerate(rows, start=1):
        sheet.write_row(index, 0, [index, country, iso, "", mission, kind, female, male])
        sheet.write_datetime(index, 8, reporting_date, dates)
    book.close()
    return path
