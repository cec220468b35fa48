"""Writing Excel files safely: text that never turns into a formula, files that appear under the user's
name only when complete, and the shared cell styles of PaxDesk's workbooks (openpyxl and xlsxwriter)."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

# Excel (and LibreOffice, Google Sheets) read a cell typed or pasted with these first characters as a formula;
# such text from the database is written as text with Excel's quote prefix, so it stays text when edited.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_FIRST_CHARACTERS = frozenset(FORMULA_TRIGGERS)
EXCEL_TEXT_LIMIT = 32_767  # characters in one cell
EXCEL_MAX_ROWS = 1_048_576

HEADER_FILL = "DDE4EE"
TOTAL_FILL = "F2F2F2"
DATE_FORMAT = "yyyy-mm-dd"
COUNT_FORMAT = "#,##0"
PERCENT_FORMAT = "0%"


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import: os.umask can only be read by setting it


class ExportError(Exception):
    """An export could not be written (bad path, no permission, file open elsewhere); the message says why
    in words a curator understands."""


class ExportRefused(ExportError):
    """The data does not fit an Excel workbook (a text over Excel's cell limit, too many rows)."""


def needs_quote_prefix(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_TRIGGERS)


def check_text(value: str, where: str) -> None:
    if len(value) > EXCEL_TEXT_LIMIT:
        raise ExportRefused(
            f"{where} holds {len(value):,} characters; an Excel cell holds at most {EXCEL_TEXT_LIMIT:,}")


# --- Atomic files ----------------------------------------------------------------------------------

def check_target(target: Path) -> Path:
    """The absolute path to write, or ExportError saying why it cannot be written."""
    target = Path(target).expanduser()
    if target.suffix.lower() != ".xlsx":
        raise ExportError(f"{target.name}: an Excel export must end in .xlsx")
    if target.exists() and target.is_dir():
        raise ExportError(f"{target} is a folder; choose a file name ending in .xlsx")
    folder = target.parent
    if not folder.is_dir():
        raise ExportError(f"The folder {folder} does not exist")
    return target.absolute()


@contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it replaces `target` in one step, on any failure
    (or cancel) it is removed, so the user's file is either the old one or the complete new one."""
    target = check_target(target)
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".~{target.stem}.", suffix=".xlsx.part", dir=target.parent)
    except PermissionError:
        raise ExportError(f"Cannot write in the folder {target.parent}: permission denied") from None
    except OSError as exc:
        raise ExportError(f"Cannot write in the folder {target.parent}: {exc.strerror}") from None
    os.close(handle)
    temp = Path(temp_name)
    # mkstemp makes the file private (0600); the export gets the permissions any new file of the user gets.
    os.chmod(temp, 0o666 & ~_UMASK)
    try:
        yield temp
        _flush_to_disk(temp)
        try:
            os.replace(temp, target)
        except PermissionError:
            raise ExportError(
                f"Cannot replace {target.name}: it is open in another program (close it in Excel) "
                "or you may not change it") from None
        except OSError as exc:
            raise ExportError(f"Cannot save {target.name}: {exc.strerror}") from None
    except OSError as exc:
        raise ExportError(f"Cannot write {target.name}: {exc.strerror or exc}") from exc
    finally:
        if temp.exists():
            temp.unlink()


def _flush_to_disk(path: Path) -> None:
    """Make the complete file durable before it takes the user's name (a power cut keeps old or new)."""
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


# --- openpyxl: styles for the reading workbooks -----------------------------------------------------

THIN = Side(style="thin", color="A6A6A6")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
TITLE_FONT = Font(bold=True, size=14)
NOTE_FONT = Font(italic=True, color="595959")
BOLD = Font(bold=True)
HEADER_FILL_STYLE = PatternFill("solid", fgColor=HEADER_FILL)
TOTAL_FILL_STYLE = PatternFill("solid", fgColor=TOTAL_FILL)
WRAP = Alignment(wrap_text=True, vertical="top")


def put(ws: Worksheet, row: int, column: int, value: Any, number_format: str | None = None):
    """Write one value with openpyxl; text always stays text (never a formula), None stays blank."""
    cell = ws.cell(row=row, column=column)
    if isinstance(value, str):
        check_text(value, f"Sheet {ws.title} cell {cell.coordinate}")
        cell.value = value
        cell.data_type = "s"  # openpyxl would otherwise store "=…" as a formula
        if needs_quote_prefix(value):
            cell.quotePrefix = True
    else:
        cell.value = value
        if isinstance(value, dt.date) and number_format is None:
            number_format = DATE_FORMAT
    if number_format:
        cell.number_format = number_format
    return cell


def write_table(ws: Worksheet, top: int, headers: list[str], rows: list[list[Any]], *,
                number_format: str = COUNT_FORMAT, total_row: bool = False, left: int = 1,
                wrap_columns: tuple[int, ...] = ()) -> tuple[int, int]:
    """A bordered table with a bold header row; numbers get `number_format`; the last row is bold when it
    holds totals. Returns (first data row, last row)."""
    for offset, header in enumerate(headers):
        cell = put(ws, top, left + offset, header)
        cell.font, cell.fill, cell.border = BOLD, HEADER_FILL_STYLE, BOX
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for r, values in enumerate(rows, start=top + 1):
        is_total = total_row and r == top + len(rows)
        for offset, value in enumerate(values):
            fmt = number_format if isinstance(value, int | float) and not isinstance(value, bool) else None
            cell = put(ws, r, left + offset, value, fmt)
            cell.border = BOX
            if offset in wrap_columns:
                cell.alignment = WRAP
            if is_total:
                cell.font, cell.fill = BOLD, TOTAL_FILL_STYLE
    return top + 1, top + len(rows)


def title_block(ws: Worksheet, title: str, lines: list[str]) -> int:
    """Title in row 1, then a line each for units, date and notes; returns the next free row (after a gap)."""
    put(ws, 1, 1, title).font = TITLE_FONT
    for index, line in enumerate(lines, start=2):
        put(ws, index, 1, line).font = NOTE_FONT
    return len(lines) + 3


def set_widths(ws: Worksheet, widths: dict[int, float]) -> None:
    for column, width in widths.items():
        ws.column_dimensions[get_column_letter(column)].width = width


def print_setup(ws: Worksheet, header_row: int) -> None:
    """Landscape, one page wide, the table header repeated on every printed page."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = f"{header_row}:{header_row}"
    ws.print_options.gridLines = False


def fitting_width(values: list[Any], minimum: float = 8, maximum: float = 60) -> float:
    """A column width that shows the longest of `values` (sampled by the caller), within bounds."""
    longest = max((len(_shown(v)) for v in values), default=0)
    return max(minimum, min(maximum, longest + 2))


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return "2024-05-31"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return max(str(value).split("\n"), key=len)


# --- What every export says about itself -----------------------------------------------------------

@dataclass
class ExportResult:
    """What an export wrote: the file and the number of data rows on each sheet."""

    path: Path
    kind: str
    sheets: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"ok": True, "path": str(self.path), "kind": self.kind, "sheets": self.sheets,
                "rows": sum(self.sheets.values())}


def database_description() -> str:
    """Which database the data came from, as it may be shown: a file path, or a URL without its password."""
    from peewee import PostgresqlDatabase

    from models.db import describe_target
    from models.schema import database

    db = database.obj
    if db is None:
        return ""
    name = str(db.database)
    if isinstance(db, PostgresqlDatabase):
        params = getattr(db, "connect_params", {}) or {}
        host, port, user = params.get("host", "localhost"), params.get("port"), params.get("user")
        return describe_target(f"postgresql://{user + '@' if user else ''}{host}{f':{port}' if port else ''}/{name}")
    return describe_target(name)


def export_metadata(kind: str, filters: str, extra: list[tuple[str, Any]] | None = None) -> list[tuple[str, Any]]:
    """(item, value) rows of a metadata sheet: when, from which database (never a password), which PaxDesk,
    with which filters."""
    from models import __version__

    now = dt.datetime.now().astimezone()
    return [
        ("Exported at", now.strftime("%Y-%m-%d %H:%M:%S %z")),
        ("Database", database_description()),
        ("PaxDesk version", __version__),
        ("Workbook kind", kind),
        ("Filters", filters or "none (all records)"),
        *(extra or []),
    ]


# --- xlsxwriter: the large data sheets --------------------------------------------------------------
# openpyxl's write-only mode took 2-3x as long as xlsxwriter's constant-memory mode for 100,000 contribution
# rows (benchmarks/bench_export.py), so sheets that can be large are streamed with xlsxwriter.

class XlsxFormats:
    """The few cell formats of a data workbook, created once per workbook."""

    def __init__(self, workbook) -> None:
        self.header = workbook.add_format({"bold": True, "bg_color": f"#{HEADER_FILL}", "bottom": 1,
                                           "text_wrap": True, "valign": "top"})
        self.date = workbook.add_format({"num_format": DATE_FORMAT})
        self.datetime = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.quoted = workbook.add_format({"quote_prefix": True})
        self.bold = workbook.add_format({"bold": True})
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.wrap = workbook.add_format({"text_wrap": True, "valign": "top"})


def write_cells(ws, row: int, values, formats: XlsxFormats, sheet: str = "") -> None:
    """Write one row of typed values: text as text (formula-like text with a quote prefix), numbers as
    numbers, dates as Excel dates; None and '' stay blank."""
    # Dispatch on the exact type first: this runs for every cell of a 100,000-row sheet.
    write_string, write_number = ws.write_string, ws.write_number
    for column, value in enumerate(values):
        kind = type(value)
        if kind is str:
            if not value:
                continue
            if len(value) > EXCEL_TEXT_LIMIT:
                check_text(value, f"Sheet {sheet} row {row + 1}")
            if value[0] in FORMULA_FIRST_CHARACTERS:
                write_string(row, column, value, formats.quoted)
            else:
                write_string(row, column, value)
        elif kind is int or kind is float:
            write_number(row, column, value)
        elif value is None:
            continue
        elif kind is bool:
            ws.write_boolean(row, column, value)
        elif kind is dt.datetime:
            ws.write_datetime(row, column, value, formats.datetime)
        elif isinstance(value, dt.date):
            ws.write_datetime(row, column, value, formats.date)
        elif isinstance(value, int | float):
            write_number(row, column, value)
        else:
            write_string(row, column, str(value))


def header_row(ws, headers: list[str], formats: XlsxFormats, rows: int, widths: list[float] | None = None) -> None:
    """Bold header in row 1, frozen, with an autofilter over the data below it."""
    for column, header in enumerate(headers):
        ws.write_string(0, column, header, formats.header)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(rows, 1), max(len(headers) - 1, 0))
    for column, width in enumerate(widths or []):
        ws.set_column(column, column, width)


def metadata_sheet(workbook, formats: XlsxFormats, rows: list[tuple[str, Any]], name: str = "Metadata"):
    ws = workbook.add_worksheet(name)
    header_row(ws, ["Item", "Value"], formats, len(rows), [22, 90])
    for index, row in enumerate(rows, start=1):
        write_cells(ws, index, row, formats, name)
    return ws


@contextmanager
def xlsx_workbook(path: Path) -> Iterator[Any]:
    """An xlsxwriter workbook in constant-memory mode (rows streamed to disk), closed even when the work
    fails or is cancelled so that its own temporary files go too."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        yield workbook
    except BaseException:
        try:
            workbook.close()
        except Exception:  # the partial file is discarded by atomic_target anyway
            pass
        raise
    workbook.close()
