"""The error report of an import: the rejected rows with their original values, an error column, and each bad
cell filled and commented. The curator fixes the cells in Excel and imports the report itself: it keeps the
sheet names, header and (for a PaxDesk workbook) the metadata of the original, and the importer ignores the
error column."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill

from models.excel_write import EXCEL_TEXT_LIMIT, atomic_target
from models.import_plan import REPORT_ERROR_HEADER, ImportPlan, RowError, SheetPlan
from models.workbook_format import DATE_FORMAT, METADATA_HEADERS, METADATA_SHEET

BAD_FILL = PatternFill("solid", fgColor="FFC7CE")  # Excel's own "bad" red
ERROR_FONT = Font(color="9C0006")
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
AUTHOR = "PaxDesk import"


def write_error_report(plan: ImportPlan, path: str | Path, extra: list[RowError] | None = None) -> Path:
    """Write the rejected rows of `plan` to `path` (.xlsx, replaced atomically) and return its full path.
    `extra`: problems with no row to show (they go to a sheet of their own)."""
    target = Path(path).expanduser()
    with atomic_target(target) as temp:
        workbook = Workbook(write_only=True)
        for sheet in plan.sheets:
            rows = [row for row in sheet.rows if row.errors]
            if rows:
                _write_sheet(workbook, sheet, rows)
        problems = [*plan.problems, *(extra or [])]
        if problems:
            _write_problems(workbook, problems)
        if plan.format == "paxdesk" and plan.metadata:
            _write_metadata(workbook, plan.metadata)
        if not workbook.worksheets:
            workbook.create_sheet("No errors").append(["Every row was accepted."])
        workbook.save(temp)
    return target.absolute()


def _write_sheet(workbook: Workbook, sheet: SheetPlan, rows: list) -> None:
    ws = workbook.create_sheet(sheet.name[:31])
    headers = list(sheet.header_cells)
    width = max([len(headers), *(_width(row.cells) for row in rows)])
    headers += [""] * (width - len(headers))
    ws.append([_header(ws, text) for text in headers] + [_header(ws, REPORT_ERROR_HEADER)])
    for staged in rows:
        bad = {error.column_index: error.reason for error in staged.errors if error.column_index is not None}
        cells = []
        for index in range(width):
            value = staged.cells[index] if index < len(staged.cells) else None
            cell = _cell(ws, value)
            if index in bad:
                cell.fill = BAD_FILL
                cell.comment = Comment(bad[index], AUTHOR, width=300, height=80)
            cells.append(cell)
        message = WriteOnlyCell(ws, value=_text("; ".join(_describe(error) for error in staged.errors)))
        message.font = ERROR_FONT
        message.alignment = Alignment(wrap_text=False)
        ws.append([*cells, message])


def _width(cells: list[Any]) -> int:
    width = len(cells)
    while width and cells[width - 1] in ("", None):
        width -= 1
    return width


def _describe(error: RowError) -> str:
    return f"{error.column}: {error.reason}" if error.column else error.reason


def _header(ws, text: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=_text(text))
    cell.font = HEADER_FONT
    cell.fill = HEADER_FILL
    return cell


def _cell(ws, value: Any) -> WriteOnlyCell:
    """The original value, typed as it was read: dates stay dates, text that looks like a formula stays text."""
    if value == "" or value is None:
        return WriteOnlyCell(ws, value=None)
    if isinstance(value, dt.datetime | dt.date):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = DATE_FORMAT if not isinstance(value, dt.datetime) or value.time() == dt.time() \
            else "yyyy-mm-dd hh:mm:ss"
        return cell
    if isinstance(value, dt.time | dt.timedelta):
        return WriteOnlyCell(ws, value=str(value))
    if isinstance(value, str):
        cell = WriteOnlyCell(ws, value=_text(value))
        cell.data_type = "s"  # "=SUM(A1)" read as text is written back as text, never as a formula
        return cell
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    return WriteOnlyCell(ws, value=value)


def _text(value: str) -> str:
    return ILLEGAL_CHARACTERS_RE.sub("", value)[:EXCEL_TEXT_LIMIT]


def _write_problems(workbook: Workbook, problems: list[RowError]) -> None:
    ws = workbook.create_sheet("Import problems")
    ws.append([_header(ws, "Sheet"), _header(ws, "Row"), _header(ws, "Problem")])
    for problem in problems:
        ws.append([problem.sheet, problem.row or None, _text(problem.reason)])


def _write_metadata(workbook: Workbook, items: dict[str, Any]) -> None:
    ws = workbook.create_sheet(METADATA_SHEET)
    ws.append([_header(ws, text) for text in METADATA_HEADERS])
    for item, value in items.items():
        ws.append([_cell(ws, item), _cell(ws, value)])
