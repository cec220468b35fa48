"""The data workbook: one sheet per record type and link, typed cells, drop-downs on code columns, codebook and
metadata, the founding case's figures, and a round trip through `paxdesk import` that changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import openpyxl
import pytest
from test_export_safety import INJECTIONS, SCRIPTS, add_awkward_records

import main
from models import schema
from models.excel_write import database_description
from models.export_data import data_sheet_cells, export_data
from models.workbook_format import (
    CODEBOOK_SHEET,
    CODES_SHEET,
    METADATA_SHEET,
    codebook_rows,
    layouts,
)


@pytest.fixture
def workbook(seeded_db, out):
    export_data(out / "data.xlsx")
    return openpyxl.load_workbook(out / "data.xlsx")


def records(ws) -> list[dict]:
    rows = ws.iter_rows(values_only=True)
    headers = next(rows)
    return [dict(zip(headers, row, strict=True)) for row in rows]


def test_one_sheet_per_record_type_and_link_then_codebook_and_metadata(workbook):
    expected = [layout.name for layout in layouts()] + [CODEBOOK_SHEET, METADATA_SHEET, CODES_SHEET]
    assert workbook.sheetnames == expected
    for layout in layouts():
        ws = workbook[layout.name]
        assert tuple(c.value for c in ws[1]) == layout.headers, layout.name
        assert all(c.font.bold for c in ws[1]), layout.name
        assert ws.freeze_panes == "A2", layout.name
        assert ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:"), layout.name
        assert ws.column_dimensions["A"].width and ws.column_dimensions["B"].width >= 8, layout.name
    assert workbook[CODES_SHEET].sheet_state == "hidden"
    assert workbook["Actors – aliases"].max_row > 300  # the seeded states' aliases


def test_founding_case_figures_with_related_records_by_id_and_name(workbook):
    contributions = records(workbook["Contributions"])
    undof = [r for r in contributions if r["mission"] == "UNDOF"]
    assert len(undof) == 1
    row = undof[0]
    assert row["total_count"] == 139 and isinstance(row["total_count"], int)
    assert row["reporting_date"] == dt.datetime(2024, 5, 31)  # a real Excel date
    assert row["contributor"] == "Kazakhstan" and row["contributor_id"] == schema.Actor.get(name="Kazakhstan").id
    assert row["mission_id"] == schema.Mission.get(acronym="UNDOF").id
    assert row["female_count"] is None and row["male_count"] is None  # unknown, not 0
    assert sum(r["total_count"] for r in contributions) == 150
    ws = workbook["Contributions"]
    assert ws.cell(row=2, column=2).number_format == "yyyy-mm-dd" and ws.cell(row=2, column=2).is_date

    authorisation = records(workbook["Authorisations"])[0]
    assert authorisation["ceiling"] == 430 and authorisation["date"] == "2024-01-19"  # EDTF stays text
    covered = {r["mission"] for r in records(workbook["Authorisations – missions"])}
    assert covered == {"UNDOF", "UNTSO", "UNMISS", "UNISFA"}
    processes = {r["name"]: r for r in records(workbook["Peace processes"])}
    assert processes["Astana process"]["start_date"] == "2017~"
    events = {r["title"]: r for r in records(workbook["Mediation events"])}
    assert events["Iran–P5+1 nuclear talks in Almaty, first round"]["start_date"] == "2013-02"
    assert isinstance(records(workbook["Missions"])[0]["active"], bool)
    participants = records(workbook["Mediation events – participants"])
    almaty = [r for r in participants if r["event"] == "Armenia–Azerbaijan talks in Almaty"]
    assert {(r["actor"], r["role"]) for r in almaty} == {("Armenia", "party"), ("Azerbaijan", "party"),
                                                       ("Kazakhstan", "host")}
    milestones = records(workbook["Contingents – milestones"])
    handover = next(r for r in milestones if r["kind"] == "transfer_of_authority")
    assert handover["counterpart"] == "Irish Contingent" and handover["date"] == "2024-03-22"
    citations = records(workbook["Contributions – citations"])
    assert any("139 Kazakhstani peacekeepers" in r["quote"] for r in citations)
    assert {r["record"] for r in citations} >= {"2024-05-31 · Kazakhstan · UNDOF · Troops"}


def test_code_columns_have_drop_downs_from_the_code_lists(workbook):
    codes = workbook[CODES_SHEET]
    lists = {}
    for column in codes.iter_cols(values_only=True):
        lists[column[0]] = [v for v in column[1:] if v is not None]
    for layout in layouts():
        ws = workbook[layout.name]
        validations = {}
        for validation in ws.data_validations.dataValidation:
            for cell_range in validation.sqref.ranges:
                validations[cell_range.min_col] = validation
        for index, column in enumerate(layout.columns, start=1):
            is_code = column.role == "value" and column.field is not None and column.field.kind == "code"
            assert (index in validations) == is_code, f"{layout.name}.{column.header}"
            if is_code:
                validation = validations[index]
                assert validation.type == "list"
                sheet, cells = validation.formula1.split("!")
                assert sheet.strip("'") == CODES_SHEET
                first, last = (int("".join(ch for ch in part if ch.isdigit())) for part in cells.split(":"))
                letter = cells.split(":")[0].strip("$").rstrip("0123456789").strip("$")
                listed = [codes[f"{letter}{row}"].value for row in range(first, last + 1)]
                assert listed == lists[column.field.codes]
                assert max(r.max_row for r in validation.sqref.ranges) >= ws.max_row
    assert lists["personnel_type"] == ["Troops", "Staff Officer", "Experts on Mission", "Individual Police",
                                       "Formed Police Units"]
    assert {"Pre", "SubPar", "SubComp", "Imp", "Cea", "Ren", "Oth"} <= set(lists["pax_stage"])


def test_codebook_and_metadata(workbook, db_path):
    codebook = records(workbook[CODEBOOK_SHEET])
    assert len(codebook) == len(codebook_rows())
    personnel = next(r for r in codebook if r["Sheet"] == "Contributions" and r["Column"] == "personnel_type")
    assert "Troops" in personnel["Allowed values"] and "Formed Police Units" in personnel["Allowed values"]
    stage = next(r for r in codebook if r["Sheet"] == "Agreements" and r["Column"] == "pax_stage")
    assert "SubComp" in stage["Allowed values"]
    role = next(r for r in codebook if r["Column"] == "role" and r["Sheet"].endswith("participants"))
    assert "mediator" in role["Allowed values"]
    metadata = {r["Item"]: r["Value"] for r in records(workbook[METADATA_SHEET])}
    assert metadata["Format"] == "PaxDesk data workbook" and metadata["Format version"] == 1
    assert metadata["Database"] == str(db_path) or metadata["Database"].startswith("postgresql://")
    from models import __version__

    assert metadata["PaxDesk version"] == __version__
    assert dt.datetime.strptime(metadata["Exported at"][:19], "%Y-%m-%d %H:%M:%S")
    assert metadata["Filters"] == "none (all records)"


def test_database_description_never_shows_a_password():
    from peewee import PostgresqlDatabase

    previous = schema.database.obj
    try:
        schema.database.initialize(PostgresqlDatabase("paxdesk", user="curator", password="s3cret",
                                                      host="db.example.org", port=5433))
        described = database_description()
    finally:
        schema.database.initialize(previous)
    assert described == "postgresql://curator@db.example.org:5433/paxdesk"
    assert "s3cret" not in described


def test_injection_text_and_scripts_survive_as_text(seeded_db, out):
    add_awkward_records()
    export_data(out / "data.xlsx")
    workbook = openpyxl.load_workbook(out / "data.xlsx")
    values = set()
    for ws in workbook:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate} is a formula"
                if isinstance(cell.value, str) and cell.value[:1] in "=+-@":
                    assert cell.quotePrefix, f"{ws.title}!{cell.coordinate}"
                values.add(cell.value)
    for text in INJECTIONS + SCRIPTS:
        assert text in values
    actors = {r["name"]: r for r in records(workbook["Actors"])}
    assert actors["Қазақстан"]["notes"] == "note Қазақстан"


@pytest.mark.sqlite_only  # the command line opens the test's database file
def test_command_line_data_export(seeded_db, db_path, out, capsys):
    seeded_db.close()
    code = main.main(["export", str(out / "data.xlsx"), "--db", str(db_path), "--json"])
    answer = json.loads(capsys.readouterr().out)
    assert code == 0 and answer["kind"] == "data"
    assert answer["sheets"]["Contributions"] == 5 and answer["sheets"]["Actors"] > 250
    assert answer["rows"] == sum(answer["sheets"].values())
    code = main.main(["export", str(out / "data.xlsx"), "--db", str(db_path)])
    assert code == 0 and "Contributions 5" in capsys.readouterr().out


def test_cells_follow_the_layout(seeded_db):
    for name, headers, rows in data_sheet_cells():
        assert all(len(row) == len(headers) for row in rows), name


def workbook_values(path: Path) -> dict[str, list[tuple]]:
    workbook = openpyxl.load_workbook(path)
    result = {}
    for ws in workbook:
        rows = list(ws.iter_rows(values_only=True))
        if ws.title == METADATA_SHEET:  # when and from where differ by design
            rows = [row for row in rows if row[0] not in ("Exported at", "Database")]
        result[ws.title] = rows
    return result


@pytest.mark.sqlite_only
def test_round_trip_through_import_reproduces_every_cell(seeded_db, db_path, out):
    add_awkward_records()
    seeded_db.close()
    first = out / "first.xlsx"
    assert main.main(["export", str(first), "--db", str(db_path)]) == 0
    copy = out / "copy.sqlite3"
    assert not copy.exists()
    assert main.main(["import", str(first), "--db", str(copy), "--format", "paxdesk"]) == 0
    second = out / "second.xlsx"
    assert main.main(["export", str(second), "--db", str(copy)]) == 0
    before, after = workbook_values(first), workbook_values(second)
    assert list(before) == list(after)
    for sheet in before:
        assert before[sheet] == after[sheet], sheet
    for text in INJECTIONS + SCRIPTS:
        assert any(text in row for row in after["Actors"])
