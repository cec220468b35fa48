"""The summary workbook: the founding case's figures where a reader looks for them, styled, printable sheets
with native charts, unknown sex splits blank, and SQL totals that follow the filters."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pytest

from models import schema, summaries
from models.export_summary import SUMMARIES, export_summary
from models.services import create_record
from models.summaries import SummaryFilters


def _find(ws, value):
    for row in ws.iter_rows():
        for cell in row:
            if cell.value == value:
                return cell
    raise AssertionError(f"{value!r} not on sheet {ws.title}")


def _table(ws, header_first: str):
    """The table whose header row starts with `header_first`: {row label: {column header: value}}."""
    header = _find(ws, header_first)
    headers = [ws.cell(row=header.row, column=c).value for c in range(1, ws.max_column + 1)]
    table = {}
    row = header.row + 1
    while ws.cell(row=row, column=1).value is not None:
        table[ws.cell(row=row, column=1).value] = {
            h: ws.cell(row=row, column=c).value for c, h in enumerate(headers, start=1) if h}
        row += 1
    return table


def _id(model, **where):
    return model.get(**where).id


@pytest.fixture
def summary(seeded_db, tmp_path):
    path = tmp_path / "summary.xlsx"
    result = export_summary(path)
    return openpyxl.load_workbook(path), result


def test_founding_case_numbers_where_a_reader_looks(summary):
    workbook, result = summary
    assert result.sheets == {"Personnel": 1, "Personnel over time": 1, "Mediation events": 5, "Agreements": 2,
                             "Authorisations": 1}
    personnel = _table(workbook["Personnel"], "Contributor")
    kazakhstan = personnel["Kazakhstan"]
    assert kazakhstan["UNDOF"] == 139 and kazakhstan["UNIFIL"] == 6
    assert kazakhstan[summaries.UNNAMED] == 5
    assert kazakhstan["Total"] == 150
    # The article gives totals only: the split by sex is unknown, shown blank, never 0.
    assert kazakhstan["Female"] is None and kazakhstan["Male"] is None
    assert personnel["Total"]["Total"] == 150
    assert "As of reporting date 2024-05-31" in [c.value for c in workbook["Personnel"]["A"]]

    authorisations = _table(workbook["Authorisations"], "Country")["Kazakhstan"]
    assert authorisations["Ceiling"] == 430
    assert authorisations["In covered missions"] == 139  # UNDOF; UNIFIL is not covered by the bill
    assert authorisations["In other named missions"] == 6
    assert authorisations["Mission not named"] == 5
    assert authorisations["Covered, at most"] == 144
    assert authorisations["All missions"] == 150
    assert authorisations["Reporting date"] == dt.datetime(2024, 5, 31)
    assert authorisations["Share of ceiling"] == pytest.approx(139 / 430)
    note = " ".join(str(c.value) for c in workbook["Authorisations"]["A"][:5] if c.value)
    assert "without naming a mission" in note and "latest reporting date" in note

    events = _table(workbook["Mediation events"], "Host country")
    assert events["Kazakhstan"]["2013"] == 2 and events["Kazakhstan"]["Total"] == 5
    event_list = _table(workbook["Mediation events"], "Peace process")
    assert event_list["Astana process"]["Events"] == 2
    listed = [row for row in workbook["Mediation events"].iter_rows(values_only=True)
              if row[1] == "Armenia–Azerbaijan talks in Almaty"]
    assert listed and listed[0][5] == "Armenia, Azerbaijan" and listed[0][7] == "Agreed to continue talks"

    agreements = _table(workbook["Agreements"], "PA-X stage")
    assert agreements["Total"]["Total"] == 2 and agreements["Total"]["Draft"] == 1


def test_every_summary_sheet_is_styled_printable_and_charted(summary):
    workbook, _ = summary
    assert workbook.sheetnames == ["About", *[title for title, _ in SUMMARIES.values()]]
    for title, _ in SUMMARIES.values():
        ws = workbook[title]
        assert ws["A1"].font.bold and ws["A1"].font.size >= 14, title
        assert any("Units:" in str(c.value) for c in ws["A"][:4]), title
        assert len(ws._charts) == 1, f"{title} has no chart"
        assert ws.page_setup.orientation == "landscape"
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
        assert ws.print_title_rows, title
        header_row = int(ws.print_title_rows.split(":")[0].strip("$"))
        assert ws.cell(row=header_row, column=1).font.bold
        assert ws.cell(row=header_row, column=1).border.bottom.style == "thin"
    personnel = workbook["Personnel"]
    total = next(c for c in personnel["A"] if c.value == "Total")
    assert personnel.cell(row=total.row, column=2).font.bold  # the totals row
    assert personnel.cell(row=total.row, column=2).number_format == "#,##0"
    from openpyxl.chart import BarChart, LineChart

    assert isinstance(personnel._charts[0], BarChart)
    assert isinstance(workbook["Personnel over time"]._charts[0], LineChart)
    about = {row[0]: row[1] for row in workbook["About"].iter_rows(values_only=True) if row[0]}
    assert about["Filters"] == "latest reporting date" and about["PaxDesk version"]


def test_no_cell_is_a_formula(summary):
    workbook, _ = summary
    for ws in workbook:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate}"


def test_sex_split_summed_only_where_every_figure_knows_it(seeded_db, tmp_path):
    kazakhstan, ireland = _id(schema.Actor, name="Kazakhstan"), _id(schema.Actor, name="Ireland")
    undof = _id(schema.Mission, acronym="UNDOF")
    day = dt.date(2024, 6, 30)
    create_record("contributions", {"reporting_date": day, "contributor": kazakhstan, "mission": undof,
                                    "personnel_type": "Troops", "female_count": 10, "male_count": 130})
    create_record("contributions", {"reporting_date": day, "contributor": kazakhstan, "mission": undof,
                                    "personnel_type": "Staff Officer", "total_count": 4})
    create_record("contributions", {"reporting_date": day, "contributor": ireland, "mission": undof,
                                    "personnel_type": "Troops", "female_count": 3, "male_count": 7})
    matrix = summaries.personnel_matrix()
    assert matrix.as_of == day  # the latest by default
    assert matrix.by_contributor[kazakhstan].total == 144
    assert matrix.by_contributor[kazakhstan].female is None  # one figure without a split: unknown
    assert (matrix.by_contributor[ireland].female, matrix.by_contributor[ireland].male) == (3, 7)
    assert [name for _, name in matrix.contributors] == ["Kazakhstan", "Ireland"]
    assert matrix.grand.total == 154 and matrix.grand.female is None

    earlier = summaries.personnel_matrix(SummaryFilters(as_of=dt.date(2024, 5, 31)))
    assert earlier.grand.total == 150
    only_ireland = summaries.personnel_matrix(SummaryFilters(contributors=(ireland,)))
    assert [name for _, name in only_ireland.contributors] == ["Ireland"] and only_ireland.grand.female == 3

    over_time = summaries.personnel_over_time(SummaryFilters(contributors=(kazakhstan,)))
    assert over_time.months == ["2024-05", "2024-06"]
    assert over_time.values[("2024-05", kazakhstan)] == 150 and over_time.values[("2024-06", kazakhstan)] == 144

    path = tmp_path / "june.xlsx"
    export_summary(path, SummaryFilters(missions=(undof,)), which=("personnel", "authorisations"))
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["About", "Personnel", "Authorisations"]
    table = _table(workbook["Personnel"], "Contributor")
    assert table["Ireland"]["Female"] == 3 and table["Kazakhstan"]["Female"] is None
    assert table["Total"]["Total"] == 154
    about = {row[0]: row[1] for row in workbook["About"].iter_rows(values_only=True) if row[0]}
    assert "missions UNDOF" in about["Filters"]
    # The authorisation now compares with the June figures, the latest after it.
    authorisation = _table(workbook["Authorisations"], "Country")["Kazakhstan"]
    assert authorisation["Reporting date"] == dt.datetime(2024, 6, 30) and authorisation["In covered missions"] == 144


def test_several_reporting_dates_in_a_month_are_not_added_up(seeded_db):
    kazakhstan, undof = _id(schema.Actor, name="Kazakhstan"), _id(schema.Mission, acronym="UNDOF")
    create_record("contributions", {"reporting_date": dt.date(2024, 5, 15), "contributor": kazakhstan,
                                    "mission": undof, "personnel_type": "Troops", "total_count": 100})
    series = summaries.personnel_over_time(SummaryFilters(contributors=(kazakhstan,)))
    assert series.values[("2024-05", kazakhstan)] == 150  # the 31 May figures, not 250
    assert series.dates["2024-05"] == dt.date(2024, 5, 31)


def test_empty_database_gives_a_readable_workbook(db, tmp_path):
    path = tmp_path / "empty.xlsx"
    result = export_summary(path)
    workbook = openpyxl.load_workbook(path)
    assert result.sheets["Personnel"] == 0
    assert "no reporting date" in " ".join(str(c.value) for c in workbook["Personnel"]["A"] if c.value)


def test_unknown_summary_is_refused(seeded_db, tmp_path):
    with pytest.raises(ValueError, match="Unknown summaries"):
        export_summary(tmp_path / "x.xlsx", which=("personnel", "weather"))
    assert not (tmp_path / "x.xlsx").exists()
