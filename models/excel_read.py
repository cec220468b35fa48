"""Opening spreadsheets for import safely and reading them fast: zip and XML checks before any parsing,
bounded sheet sizes, python-calamine for the cells (cached formula values, never evaluated), header finding.

Checks, in order, each refusing with one line a curator understands (WorkbookRefused):
- the file exists, is a zip holding an Excel workbook (.xlsx/.xlsm; macros are never run, only data read);
- the zip's declared sizes: total, per member, and the compression ratio of large members (zip bombs); the
  zip reader in calamine refuses a member that inflates past its declared size, so the declared sizes bound
  the work;
- no XML part carries a document type declaration (the vehicle of entity-expansion attacks; OOXML has none);
- before calamine reads a sheet, its cell references are scanned: calamine allocates the whole rectangle from
  the first to the last used cell, so a sheet touching column XFD or row 1,048,576 would take gigabytes.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import re
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from defusedxml import ElementTree as SafeElementTree

from models.validation import fold

MAX_FILE_BYTES = 200 * 1024 * 1024  # the file on disk
MAX_TOTAL_UNCOMPRESSED = 512 * 1024 * 1024  # all parts together, as the zip declares them
MAX_MEMBER_UNCOMPRESSED = 400 * 1024 * 1024
MAX_RATIO = 100  # a large part compressing better than 100:1 is a bomb, not a spreadsheet
RATIO_CHECKED_ABOVE = 1024 * 1024
MAX_MEMBERS = 10_000
MAX_COLUMNS = 1_000
MAX_CELLS = 12_000_000  # width × height of the used rectangle; calamine holds 32 bytes per cell
HEADER_SCAN_ROWS = 30
CHUNK = 1 << 20
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")

MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
DIMENSION = re.compile(rb'<dimension ref="\$?([A-Z]{1,3})\$?(\d{1,7})(?::\$?([A-Z]{1,3})\$?(\d{1,7}))?"')
CELL_REF = re.compile(rb'([A-Z]*)(\d+)')


class WorkbookRefused(Exception):
    """The file cannot be imported as it is; the message says why, in one line."""


@dataclass
class SheetData:
    """The cells of one sheet as calamine reads them (formulas as their cached values)."""

    name: str
    rows: list[list[Any]]
    first_row: int = 1  # Excel's number of rows[0]
    first_column: int = 0  # 0-based column index of each row's first cell

    def row_number(self, index: int) -> int:
        return self.first_row + index

    def column_letter(self, index: int) -> str:
        return column_letter(self.first_column + index)


@dataclass
class WorkbookFile:
    """An opened, checked workbook; read sheets with `sheet(name)`; close it (or use `with`)."""

    path: Path
    sheet_names: list[str]
    _calamine: Any
    _zip: zipfile.ZipFile
    _sheet_parts: dict[str, str] = field(default_factory=dict)

    def __enter__(self) -> WorkbookFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._calamine.close()
        except Exception:  # already closed
            pass
        self._zip.close()

    def sheet(self, name: str) -> SheetData:
        if name not in self.sheet_names:
            raise WorkbookRefused(f"{self.path.name} has no sheet '{name}' (it has: {', '.join(self.sheet_names)})")
        part = self._sheet_parts.get(name)
        if part is None:
            raise WorkbookRefused(f"Sheet '{name}' of {self.path.name} is not a worksheet (a chart or macro sheet)")
        check_sheet_extent(self._zip, part, name)
        try:
            with bulk_allocation():  # to_python makes a list per row
                sheet = self._calamine.get_sheet_by_name(name)
                rows = sheet.to_python(skip_empty_area=True)
                start = sheet.start
        except Exception as exc:  # calamine's own errors: damaged XML, bad zip data
            raise WorkbookRefused(f"Sheet '{name}' of {self.path.name} cannot be read: {_first_line(exc)}") from None
        if not rows or start is None:
            return SheetData(name, [])
        return SheetData(name, rows, first_row=start[0] + 1, first_column=start[1])


@contextmanager
def bulk_allocation() -> Iterator[None]:
    """Pause the cyclic garbage collector while hundreds of thousands of row objects are made: each
    collection would rescan all of them (it tripled the cost of staging), and they hold no cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else exc.__class__.__name__


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def column_number(letters: str) -> int:
    """A → 1, Z → 26, AA → 27."""
    number = 0
    for char in letters:
        number = number * 26 + ord(char) - 64
    return number


# --- Opening -----------------------------------------------------------------------------------------

def open_workbook(path: str | Path) -> WorkbookFile:
    """Check `path` and open it for reading; raises WorkbookRefused with the reason."""
    path = Path(path).expanduser()
    if not path.exists():
        raise WorkbookRefused(f"{path} does not exist")
    if path.is_dir():
        raise WorkbookRefused(f"{path} is a folder, not an Excel workbook")
    size = path.stat().st_size
    if size == 0:
        raise WorkbookRefused(f"{path.name} is empty (0 bytes), not an Excel workbook")
    if size > MAX_FILE_BYTES:
        raise WorkbookRefused(f"{path.name} is {size / 2**20:,.0f} MB; PaxDesk imports workbooks of at most "
                              f"{MAX_FILE_BYTES / 2**20:,.0f} MB (split it into several files)")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic == b"\xd0\xcf\x11\xe0":
        raise WorkbookRefused(f"{path.name} is an old-style .xls workbook (or an encrypted one); "
                              "save it as .xlsx in Excel and import that")
    if magic[:2] != b"PK":
        raise WorkbookRefused(f"{path.name} is not an Excel workbook (.xlsx): it is not a zip package")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WorkbookRefused(f"{path.name} is damaged or truncated: {_first_line(exc)}") from None
    try:
        check_zip(archive, path.name)
        sheet_parts = _sheet_parts(archive, path.name)
        for info in archive.infolist():
            if info.filename.lower().endswith((".xml", ".rels", ".vml")) and info.filename not in \
                    sheet_parts.values():
                _check_member_xml(archive, info, path.name)
        calamine = _open_calamine(path)
    except BaseException:
        archive.close()
        raise
    names = list(calamine.sheet_names)
    return WorkbookFile(path, names, calamine, archive, sheet_parts)


def _open_calamine(path: Path):
    from python_calamine import CalamineWorkbook

    try:
        return CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for damaged parts
        raise WorkbookRefused(f"{path.name} is damaged and cannot be read: {_first_line(exc)}") from None


def check_zip(archive: zipfile.ZipFile, name: str) -> None:
    """Refuse zip bombs and non-workbooks from the central directory alone, before anything is inflated."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise WorkbookRefused(f"{name} holds {len(infos):,} parts; an Excel workbook holds a few dozen")
    names = {info.filename for info in infos}
    if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
        hint = " (it looks like a Word or PowerPoint file)" if any(n.startswith(("word/", "ppt/")) for n in names) \
            else ""
        raise WorkbookRefused(f"{name} is a zip file but not an Excel workbook{hint}")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > MAX_MEMBER_UNCOMPRESSED or total > MAX_TOTAL_UNCOMPRESSED:
            raise WorkbookRefused(
                f"{name} would unpack to more than {MAX_TOTAL_UNCOMPRESSED / 2**20:,.0f} MB "
                f"('{info.filename}' alone declares {info.file_size / 2**20:,.0f} MB); refused as a possible zip bomb")
        if info.file_size > RATIO_CHECKED_ABOVE and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise WorkbookRefused(
                f"{name}: part '{info.filename}' inflates {ratio:,.0f} times ({info.file_size / 2**20:,.0f} MB); "
                "refused as a possible zip bomb")
        if info.flag_bits & 0x1:
            raise WorkbookRefused(f"{name} is password-protected; remove the password in Excel and import again")


def _read_small(archive: zipfile.ZipFile, member: str, name: str) -> bytes:
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise WorkbookRefused(f"{name} is damaged: the part '{member}' is missing") from None
    data = _inflate(archive, info, name)
    _refuse_dtd(data, name, member)
    return data


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> bytes:
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise WorkbookRefused(f"{name} is damaged or truncated ({info.filename}: {_first_line(exc)})") from None
    except Exception as exc:  # zlib.error and friends
        raise WorkbookRefused(f"{name} is damaged or truncated ({info.filename}: {_first_line(exc)})") from None


def _refuse_dtd(data: bytes, where: str, member: str) -> None:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise WorkbookRefused(f"{where} (part {member}) carries an XML document type declaration, which no Excel "
                              "file does: the vehicle of entity-expansion attacks; refused")


def _check_member_xml(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> None:
    """Stream one XML part looking for a document type declaration (bounded memory)."""
    tail = b""
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK):
                _refuse_dtd(tail + chunk, name, info.filename)
                tail = chunk[-16:]
    except WorkbookRefused:
        raise
    except Exception as exc:  # bad CRC, truncated data, zlib errors
        raise WorkbookRefused(f"{name} is damaged or truncated ({info.filename}: {_first_line(exc)})") from None


def _sheet_parts(archive: zipfile.ZipFile, name: str) -> dict[str, str]:
    """Sheet name → zip member of its worksheet XML, from the workbook part and its relationships."""
    try:
        workbook = SafeElementTree.fromstring(_read_small(archive, "xl/workbook.xml", name))
        rels_data = _read_small(archive, "xl/_rels/workbook.xml.rels", name)
        relations = SafeElementTree.fromstring(rels_data)
    except WorkbookRefused:
        raise
    except Exception as exc:  # defusedxml refusals and malformed XML
        raise WorkbookRefused(f"{name} is damaged: its workbook part cannot be read ({_first_line(exc)})") from None
    targets = {}
    for rel in relations.iter(f"{PKG_REL_NS}Relationship"):
        if rel.get("Type", "").endswith("/worksheet"):
            target = rel.get("Target", "")
            member = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
            targets[rel.get("Id")] = _normalise_member(member)
    parts = {}
    for sheet in workbook.iter(f"{MAIN_NS}sheet"):
        member = targets.get(sheet.get(f"{REL_NS}id"))
        if member is not None:
            parts[sheet.get("name", "")] = member
    return parts


def _normalise_member(member: str) -> str:
    parts: list[str] = []
    for piece in member.split("/"):
        if piece == "..":
            if parts:
                parts.pop()
        elif piece and piece != ".":
            parts.append(piece)
    return "/".join(parts)


# --- Sheet extent ------------------------------------------------------------------------------------

def _greater_than(text: str, alphabet: str) -> str:
    """A regex matching strings over `alphabet` (ordered, most significant first) greater than `text`:
    longer ones, or equally long ones that are greater at the first difference. Column letters and row
    numbers both compare this way."""
    top = alphabet[-1]
    choices = [f"[{alphabet[0]}-{top}]{{{len(text) + 1},}}"]
    for position, char in enumerate(text):
        index = alphabet.index(char)
        if index + 1 < len(alphabet):
            rest = len(text) - position - 1
            choices.append(f"{text[:position]}[{alphabet[index + 1]}-{top}][{alphabet[0]}-{top}]{{{rest}}}")
    return "(?:" + "|".join(choices) + ")"


def _beyond(max_column: int, max_row: int) -> re.Pattern[bytes]:
    """A regex finding cell or row references past (max_column, max_row): rare in an honest sheet."""
    columns = _greater_than(column_letter(max_column - 1), "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    rows = _greater_than(str(max_row), "0123456789")
    return re.compile(f' r="(?:{columns}[0-9]|[A-Z]{{0,3}}{rows}")'.encode())


def check_sheet_extent(archive: zipfile.ZipFile, member: str, sheet: str) -> tuple[int, int]:
    """(columns, rows) bounding the rectangle calamine will allocate for the sheet, or WorkbookRefused when it
    is too large. The sheet's own dimension element is only a claim: a streaming pass looks for references
    beyond it. For a narrow sheet (the usual import) one quick regex vouches for the claim; other sheets, and
    narrow ones that break their claim, get an exact scan of every reference."""
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise WorkbookRefused(f"Sheet '{sheet}' is missing from the workbook (part {member})") from None
    try:
        with archive.open(info) as stream:
            first = stream.read(CHUNK)
            claim = DIMENSION.search(first)
            columns = rows = 0
            if claim:
                columns = column_number((claim.group(3) or claim.group(1)).decode())
                rows = int(claim.group(4) or claim.group(2))
            if claim and columns <= 26 and columns * FAST_ROW_BOUND <= MAX_CELLS:
                if _narrow_sheet_holds(stream, first, columns, sheet, member, info.file_size):
                    _check_extent(columns, min(max(rows, 1), FAST_ROW_BOUND), sheet)
                    return columns, FAST_ROW_BOUND
        with archive.open(info) as stream:
            return _exact_extent(stream, columns, rows, sheet, member, info.file_size)
    except WorkbookRefused:
        raise
    except Exception as exc:  # bad CRC, truncated, zlib errors
        raise WorkbookRefused(f"Sheet '{sheet}' is damaged or truncated: {_first_line(exc)}") from None


FAST_ROW_BOUND = 999_999  # rows of six digits at most: what the fast pass can vouch for


def _narrow_sheet_holds(stream, first: bytes, columns: int, sheet: str, member: str, size: int) -> bool:
    """True when no reference lies beyond the first `columns` (≤ 26) columns or has seven digits: one regex
    whose every alternative fails at the first or second character of an honest reference."""
    later = f"[{chr(65 + columns)}-Z]|" if columns < 26 else ""
    pattern = re.compile(f' r="(?:{later}[A-Z]{{2}}|[A-Z]?[0-9]{{7}})'.encode())
    # A document type declaration can only stand before the first element, so the first chunk tells.
    _refuse_dtd(first, f"Sheet '{sheet}'", member)
    tail = b""
    chunk = first
    counter = _CellCounter(size, sheet)
    while chunk:
        counter.add(chunk)
        if pattern.search(tail + chunk):
            return False
        tail = chunk[-16:]
        chunk = stream.read(CHUNK)
    return True


class _CellCounter:
    """Cells written without a reference take their place from their position; only a huge sheet part can
    hold more than MAX_CELLS of them, so only then are cell tags counted."""

    def __init__(self, size: int, sheet: str):
        self.active = size // 4 > MAX_CELLS
        self.count = 0
        self.sheet = sheet

    def add(self, chunk: bytes) -> None:
        if self.active:
            self.count += chunk.count(b"<c")
            if self.count > MAX_CELLS:
                raise WorkbookRefused(f"Sheet '{self.sheet}' holds more than {MAX_CELLS:,} cells; PaxDesk imports "
                                      "at most that many from one sheet (split the file)")


def _exact_extent(stream, columns: int, rows: int, sheet: str, member: str, size: int) -> tuple[int, int]:
    """Every reference beyond the largest seen so far, by a regex that stays quiet while the sheet keeps to
    its claimed dimension (an implausible claim counts as A1)."""
    if not (columns and columns <= MAX_COLUMNS and columns * rows <= MAX_CELLS):
        columns = rows = 1
    pattern = _beyond(columns, rows)
    counter = _CellCounter(size, sheet)
    tail = b""
    while chunk := stream.read(CHUNK):
        data = tail + chunk
        _refuse_dtd(data, f"Sheet '{sheet}'", member)
        counter.add(chunk)
        grown = False
        for hit in pattern.finditer(data):
            letters, digits = CELL_REF.match(data, hit.start() + 4).groups()
            if letters:
                columns = max(columns, column_number(letters.decode()))
            rows = max(rows, int(digits))
            grown = True
            _check_extent(columns, rows, sheet)
        if grown:
            pattern = _beyond(columns, rows)
        tail = data[-40:]
    _check_extent(columns, rows, sheet)
    return columns, rows


def _check_extent(columns: int, rows: int, sheet: str) -> None:
    if columns > MAX_COLUMNS:
        raise WorkbookRefused(
            f"Sheet '{sheet}' uses {columns:,} columns (up to column {column_letter(columns - 1)}); PaxDesk reads "
            f"sheets of at most {MAX_COLUMNS:,} columns: delete the columns beyond your data and import again")
    if columns * rows > MAX_CELLS:
        raise WorkbookRefused(
            f"Sheet '{sheet}' spans {rows:,} rows × {columns:,} columns; PaxDesk reads at most {MAX_CELLS:,} cells "
            "from one sheet: delete the rows and columns beyond your data, or split the file")


# --- Headers ------------------------------------------------------------------------------------------

def normalise_header(value: Any) -> str:
    """'Contributing Country', 'contributing_country' and ' CONTRIBUTING-COUNTRY ' are one header."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return re.sub(r"[\s\-_]+", "_", fold(text)).strip("_")


def is_blank(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, str) and not value.strip())


def header_cells(row: Sequence[Any]) -> list[str]:
    """The header texts of a row, trailing empty cells dropped; numbers and dates as text."""
    cells = [_as_header_text(value) for value in row]
    while cells and not cells[-1]:
        cells.pop()
    return cells


def _as_header_text(value: Any) -> str:
    if is_blank(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).strip()


def find_header_row(rows: Sequence[Sequence[Any]], required: Iterable[str]) -> int | None:
    """Index of the first row (among the first HEADER_SCAN_ROWS) holding every `required` normalised header."""
    wanted = set(required)
    for index, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        if wanted <= {normalise_header(value) for value in row}:
            return index
    return None


def guess_header_row(rows: Sequence[Sequence[Any]]) -> int | None:
    """For a sheet of unknown layout: the first row of text only that is as wide as the widest of the first
    rows (titles above a table are narrower; data rows often hold numbers and dates), else the first row of
    text at least half that wide."""
    sample = rows[:HEADER_SCAN_ROWS]
    filled = [[value for value in row if not is_blank(value)] for row in sample]
    widest = max((len(cells) for cells in filled), default=0)
    textual = [index for index, cells in enumerate(filled) if cells and all(isinstance(v, str) for v in cells)]
    for index in textual:
        if len(filled[index]) == widest:
            return index
    return next((index for index in textual if len(filled[index]) >= widest / 2), None)


def header_signature(headers: Iterable[str]) -> str:
    """A key for a set of column headers, whatever their order, case or spelling of spaces."""
    names = sorted({normalise_header(header) for header in headers if normalise_header(header)})
    return hashlib.sha256("\x1f".join(names).encode()).hexdigest()[:32]
