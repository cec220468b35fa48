"""Broken and hostile files get a clear one-line refusal, fast, with the database untouched: not a workbook,
truncated and corrupted zips, XML entity bombs, zip bombs (honest and lying sizes), sheets of 16,384 columns
or a far-away cell, empty workbooks, a header without rows; formulas give their cached values and are never
evaluated; macros in .xlsm are ignored."""

from __future__ import annotations

import datetime as dt
import os
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import openpyxl
import psutil
import pytest
import xlsxwriter
from defusedxml import EntitiesForbidden

from models import schema
from models.excel_read import WorkbookRefused
from models.importing import ImportOptions, import_file
from tests.un_files import HUB

ROOT = Path(__file__).resolve().parent.parent
HEAD = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
MAIN = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
LAUGHS = (b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                     for i in range(1, 10)) + b"]>")


def good_file(path: Path, rows: int = 3) -> Path:
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Contributions")
    dates = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, HUB)
    for index in range(1, rows + 1):
        sheet.write_row(index, 0, [index, "Kazakhstan", "KAZ", 398, "UNDOF", "Troops", 1, index])
        sheet.write_datetime(index, 8, dt.datetime(2022, 1, 1) + dt.timedelta(days=31 * index), dates)
    book.close()
    return path


def replace_part(source: Path, target: Path, part: str, data: bytes, extra: dict[str, bytes] | None = None) -> Path:
    """A copy of an .xlsx with one part's bytes replaced (and maybe parts added)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        assert part in old.namelist()
        for info in old.infolist():
            new.writestr(info.filename, data if info.filename == part else old.read(info))
        for name, payload in (extra or {}).items():
            new.writestr(name, payload)
    return target


def sheet_xml(body: bytes, prolog: bytes = b"", dimension: bytes = b"") -> bytes:
    return (HEAD + prolog + b"<worksheet " + MAIN + b">" + dimension + b"<sheetData>" + body
            + b"</sheetData></worksheet>")


@pytest.fixture
def watched(seeded_db, tmp_path):
    """The database's contents before; after the test, they must be the same and no backup was taken."""
    before = (schema.Contribution.select().count(), schema.ChangeSet.select().count(), schema.Actor.select().count())
    yield
    after = (schema.Contribution.select().count(), schema.ChangeSet.select().count(), schema.Actor.select().count())
    assert after == before
    folder = Path(seeded_db.database).parent
    assert not list(folder.glob("*.bak*")), "a backup means something was about to be written"


def refused(path: Path, *fragments: str, seconds: float = 5.0) -> str:
    started = time.perf_counter()
    with pytest.raises(WorkbookRefused) as caught:
        import_file(path, ImportOptions())
    assert time.perf_counter() - started < seconds
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_a_text_file_named_xlsx_is_refused(watched, tmp_path):
    path = tmp_path / "notes.xlsx"
    path.write_text("contributing_country,mission_acronym\nKazakhstan,UNDOF\n")
    refused(path, "notes.xlsx is not an Excel workbook (.xlsx): it is not a zip package")


def test_an_old_xls_or_encrypted_workbook_is_refused(watched, tmp_path):
    path = tmp_path / "old.xlsx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4096)
    refused(path, "old-style .xls workbook (or an encrypted one)")


def test_another_kind_of_zip_is_refused(watched, tmp_path):
    path = tmp_path / "letter.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<document/>")
    refused(path, "a zip file but not an Excel workbook (it looks like a Word or PowerPoint file)")


def test_a_truncated_workbook_is_refused(watched, tmp_path):
    whole = good_file(tmp_path / "whole.xlsx", rows=200).read_bytes()
    path = tmp_path / "cut.xlsx"
    path.write_bytes(whole[: len(whole) * 2 // 3])
    refused(path, "cut.xlsx is damaged or truncated")


def test_a_workbook_with_corrupted_sheet_data_is_refused(watched, tmp_path):
    source = good_file(tmp_path / "whole.xlsx", rows=200)
    data = bytearray(source.read_bytes())
    info = zipfile.ZipFile(source).getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 40
    data[start:start + 200] = os.urandom(200)  # the sheet's compressed bytes, the zip's directory intact
    path = tmp_path / "corrupted.xlsx"
    path.write_bytes(bytes(data))
    refused(path, "damaged")


@pytest.mark.parametrize("part", ["xl/worksheets/sheet1.xml", "xl/sharedStrings.xml"])
def test_an_xml_entity_bomb_is_refused_before_any_parser_sees_it(watched, tmp_path, part):
    source = good_file(tmp_path / "strings.xlsx")  # xlsxwriter writes shared strings: both parts exist
    if part.endswith("sheet1.xml"):
        bomb = sheet_xml(b'<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>', prolog=LAUGHS)
    else:
        bomb = HEAD + LAUGHS + b'<sst ' + MAIN + b' count="1" uniqueCount="1"><si><t>&lol9;</t></si></sst>'
    path = replace_part(source, tmp_path / "bomb.xlsx", part, bomb)
    refused(path, "carries an XML document type declaration", "refused")


def test_calamine_itself_does_not_expand_entities(tmp_path):
    """Defence in depth: were the declaration check gone, calamine would still not expand the entities."""
    from python_calamine import CalamineWorkbook

    book = openpyxl.Workbook()
    book.save(tmp_path / "plain.xlsx")
    bomb = sheet_xml(b'<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>', prolog=LAUGHS)
    path = replace_part(tmp_path / "plain.xlsx", tmp_path / "bomb.xlsx", "xl/worksheets/sheet1.xml", bomb)
    started = time.perf_counter()
    try:
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Sheet").to_python()
    except Exception as exc:  # calamine refuses the unknown entity
        assert "entity" in str(exc)
    else:
        assert all(len(str(value)) < 100 for row in rows for value in row)
    assert time.perf_counter() - started < 1


def test_openpyxl_reads_xml_through_defusedxml(tmp_path):
    """openpyxl (the error report's writer, and any future reader) refuses entity declarations."""
    import openpyxl.xml

    assert openpyxl.xml.DEFUSEDXML is True
    bomb = HEAD + LAUGHS + b'<sst ' + MAIN + b' count="1" uniqueCount="1"><si><t>&lol9;</t></si></sst>'
    path = replace_part(good_file(tmp_path / "plain.xlsx"), tmp_path / "bomb.xlsx", "xl/sharedStrings.xml", bomb)
    started = time.perf_counter()
    with pytest.raises(ValueError) as caught:
        openpyxl.load_workbook(path)
    causes, error = [], caught.value
    while error is not None:
        causes.append(type(error))
        error = error.__cause__ or error.__context__
    assert EntitiesForbidden in causes  # defusedxml's refusal, under openpyxl's "could not read strings"
    assert time.perf_counter() - started < 2


def test_a_zip_bomb_is_refused_from_its_declared_sizes(watched, tmp_path):
    source = good_file(tmp_path / "small.xlsx")
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info))
        with new.open("xl/media/padding.bin", "w") as padding:  # 64 MB of zeros: about 64 KB compressed
            for _ in range(64):
                padding.write(bytes(2**20))
    process = psutil.Process()
    memory = process.memory_info().rss
    refused(path, "inflates", "times", "possible zip bomb")
    assert process.memory_info().rss - memory < 50 * 2**20


def test_a_zip_whose_declared_sizes_are_huge_is_refused_unread(watched, tmp_path):
    data = bytearray(good_file(tmp_path / "small.xlsx").read_bytes())
    position = 0
    while (position := data.find(b"PK\x01\x02", position)) >= 0:  # every central directory entry
        struct.pack_into("<I", data, position + 24, 300 * 2**20)  # claims 300 MB uncompressed
        position += 4
    path = tmp_path / "claims.xlsx"
    path.write_bytes(bytes(data))
    refused(path, "possible zip bomb")


def test_a_part_larger_than_it_declares_is_refused(watched, tmp_path):
    source = good_file(tmp_path / "big.xlsx", rows=3_000)
    data = bytearray(source.read_bytes())
    info = zipfile.ZipFile(source).getinfo("xl/worksheets/sheet1.xml")
    struct.pack_into("<I", data, info.header_offset + 22, 2_000)  # local header: 2,000 bytes
    position = 0
    while (position := data.find(b"PK\x01\x02", position)) >= 0:
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        if bytes(data[position + 46:position + 46 + name_length]) == b"xl/worksheets/sheet1.xml":
            struct.pack_into("<I", data, position + 24, 2_000)  # central directory: the same lie
        position += 4
    path = tmp_path / "lying.xlsx"
    path.write_bytes(bytes(data))
    refused(path, "damaged or truncated")


def test_a_sheet_of_16384_columns_is_refused_without_reading_it(watched, tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HUB)
    for row in range(2, 2_000):
        sheet.cell(row, 1, row)
        sheet.cell(row, 16_384, "far right")
    book.save(tmp_path / "wide.xlsx")
    process = psutil.Process()
    memory = process.memory_info().rss

    message = refused(tmp_path / "wide.xlsx", "uses 16,384 columns (up to column XFD)", "at most 1,000 columns")

    assert "delete the columns beyond your data" in message
    assert process.memory_info().rss - memory < 100 * 2**20  # calamine would have allocated over 1 GB


def test_a_far_away_cell_behind_a_lying_dimension_is_refused_not_a_crash(tmp_path, seeded_template):
    """calamine allocates the whole rectangle up to the last cell: 17 billion cells here, which aborts the
    process. Run the import in a child process with a memory cap, so a regression fails this test instead of
    killing the test run."""
    book = openpyxl.Workbook()
    book.active.append(HUB)
    book.save(tmp_path / "plain.xlsx")
    body = (b'<row r="1"><c r="A1" t="inlineStr"><is><t>contributing_country</t></is></c></row>'
            b'<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>')
    path = replace_part(tmp_path / "plain.xlsx", tmp_path / "far.xlsx", "xl/worksheets/sheet1.xml",
                        sheet_xml(body, dimension=b'<dimension ref="A1"/>'))
    database = tmp_path / "db.sqlite3"
    database.write_bytes(seeded_template.read_bytes())
    child = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30)); "
             "import main; sys.exit(main.main(sys.argv[1:]))")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", child, "import", str(path), "--db", str(database)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert time.perf_counter() - started < 30
    assert done.returncode == 2, done.stderr
    assert "spans 1,048,576 rows × 16,384 columns" in done.stderr or "16,384 columns" in done.stderr


def test_an_empty_workbook_is_refused(watched, tmp_path):
    openpyxl.Workbook().save(tmp_path / "empty.xlsx")
    refused(tmp_path / "empty.xlsx", "holds no data (every sheet is empty)")


def test_a_header_without_rows_is_refused(watched, tmp_path):
    good_file(tmp_path / "header.xlsx", rows=0)
    refused(tmp_path / "header.xlsx", "the header is there but no rows follow it")


def test_formulas_give_their_cached_values_and_are_never_evaluated(seeded_db, tmp_path):
    path = tmp_path / "formulas.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Contributions")
    sheet.write_row(0, 0, HUB)
    sheet.write_row(1, 0, [1, "Kazakhstan", "KAZ", 398, "UNDOF", "Troops"])
    sheet.write_formula(1, 6, "=1+1", None, 7)  # the cached value, 7, is what Excel last computed and showed
    sheet.write_formula(1, 7, "=SUM(G2:G2)*100", None, 700)
    sheet.write_string(1, 8, "2022-03-31")
    sheet.write_row(2, 0, [2, "Ireland", "IRL", 372, "UNDOF", "Troops"])
    sheet.write_formula(2, 6, '=WEBSERVICE("http://example.invalid/")', None, 3)
    sheet.write_number(2, 7, 30)
    sheet.write_string(2, 8, "2022-03-31")
    book.close()

    _, result = import_file(path)

    assert result.inserted == 2, result.errors
    stored = {row.contributor.name: (row.female_count, row.male_count) for row in schema.Contribution.select().where(
        schema.Contribution.reporting_date == dt.date(2022, 3, 31))}
    assert stored == {"Kazakhstan": (7, 700), "Ireland": (3, 30)}


def test_a_formula_without_a_cached_value_is_an_empty_cell_not_a_computation(seeded_db, tmp_path):
    book = openpyxl.Workbook()  # openpyxl stores formulas without values, as if never opened in Excel
    sheet = book.active
    sheet.append(HUB)
    sheet.append([1, "Kazakhstan", "KAZ", 398, "UNDOF", "Troops", "=2+3", 10, "2022-03-31"])
    book.save(tmp_path / "uncomputed.xlsx")

    _, result = import_file(tmp_path / "uncomputed.xlsx")

    # Had the formula been computed, the row would hold 5 women; read as the empty cell it is, the row lacks
    # a count and is refused like any row with a missing count.
    assert result.rejected == 1 and not result.written
    error = result.errors[0]
    assert (error.column, error.value) == ("female_personnel", "")
    assert error.reason == "Give the total, or both the female and male counts"


def test_macros_in_an_xlsm_are_ignored_and_the_data_imported(seeded_db, tmp_path):
    vba = tmp_path / "vbaProject.bin"
    vba.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"Sub Auto_Open(): Shell \"calc\": End Sub" * 10)
    path = tmp_path / "macros.xlsm"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Contributions")
    book.add_vba_project(str(vba))
    sheet.write_row(0, 0, HUB)
    sheet.write_row(1, 0, [1, "Kazakhstan", "KAZ", 398, "UNDOF", "Troops", 2, 20])
    sheet.write_string(1, 8, "2022-04-30")
    book.close()
    assert "xl/vbaProject.bin" in zipfile.ZipFile(path).namelist()

    _, result = import_file(path)

    assert result.inserted == 1 and not result.errors
