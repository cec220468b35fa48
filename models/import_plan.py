"""What an import is made of, shared by its modules: options, the plan of staged rows (each with its action and
errors), the result, saved column mappings, and small helpers on cell values."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee

from models import schema
from models.db import set_setting
from models.excel_read import SheetData, WorkbookRefused, header_signature, is_blank
from models.records import RECORD_TYPES, RecordType, record_type

FORMATS = ("auto", "un", "paxdesk", "mapped")
MODES = ("upsert", "insert")
ERROR_POLICIES = ("abort", "skip")
REPORT_ERROR_HEADER = "PaxDesk import errors"  # the error column of a report; ignored when the report is imported
MAPPING_SETTING_PREFIX = "import-mapping:"


class ImportRefused(WorkbookRefused):
    """The file or the options cannot be used for an import (as opposed to rows whose data is refused)."""

# --- What staging produces ---------------------------------------------------------------------------

@dataclass(slots=True)
class RowError:
    sheet: str
    row: int  # Excel's row number; 0 when the problem is the sheet's
    column: str  # the header as the file writes it; "" for the whole row
    value: Any
    reason: str
    column_index: int | None = None  # position in the sheet's rows, for the error report

    def as_dict(self) -> dict[str, Any]:
        return {"sheet": self.sheet, "row": self.row, "column": self.column, "value": plain_value(self.value),
                "reason": self.reason}

    def __str__(self) -> str:
        where = f"{self.sheet}, row {self.row}" if self.row else self.sheet
        if self.column:
            where += f", {self.column}"
        shown = "" if is_blank(self.value) else f" ('{plain_value(self.value)}')"
        return f"{where}{shown}: {self.reason}"


@dataclass(slots=True)
class StagedRow:
    row: int  # Excel's row number
    cells: list[Any]  # the row as read, for the error report
    action: str = "error"  # insert, update, unchanged, error
    values: dict[str, Any] | None = None  # cleaned field values (link rows: with their owner)
    record_id: int | None = None  # the database id it updates or will take (None: the next free id)
    # A new row's record_id is only the planner's guess (the workbook gave none, or one in use): the write
    # replaces it with a fresh id drawn inside its transaction, and the references to it follow.
    provisional: bool = False
    old: dict[str, Any] | None = None  # the stored row (update, unchanged)
    changes: dict[str, Any] | None = None  # field → new value (update)
    errors: list[RowError] = field(default_factory=list)
    label: str = ""


@dataclass
class SheetPlan:
    name: str
    kind: str  # un, paxdesk, mapped
    record_type: str
    link: str | None
    header_cells: list[str]
    header_row: int  # Excel's row number of the header
    first_column: int
    rows: list[StagedRow] = field(default_factory=list)
    deletions: list[dict[str, Any]] = field(default_factory=list)  # link rows to remove (stored rows)
    mapping: ColumnMapping | None = None

    @property
    def spec(self) -> RecordType:
        return record_type(self.record_type)

    @property
    def model(self) -> type[peewee.Model]:
        return self.spec.link(self.link).model if self.link else self.spec.model

    @property
    def title(self) -> str:
        return self.spec.label if self.link is None else f"{self.spec.label}: {self.spec.link(self.link).label}"


@dataclass(frozen=True)
class ColumnMapping:
    """Which field of a record type each column of a sheet of unknown layout holds (header → field name)."""

    record_type: str
    columns: dict[str, str]

    def to_json(self) -> str:
        return json.dumps({"record_type": self.record_type, "columns": self.columns}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ColumnMapping:
        data = json.loads(text)
        return cls(data["record_type"], dict(data["columns"]))


@dataclass
class ImportOptions:
    format: str = "auto"
    sheet: str | None = None
    mode: str = "upsert"
    on_error: str = "abort"
    dry_run: bool = False
    mapping: ColumnMapping | None = None  # for a sheet of unknown layout (the wizard's choice)

    def check(self) -> None:
        for value, allowed, what in ((self.format, FORMATS, "format"), (self.mode, MODES, "mode"),
                                     (self.on_error, ERROR_POLICIES, "error policy")):
            if value not in allowed:
                raise ImportRefused(f"Unknown {what} '{value}'; use one of {', '.join(allowed)}")


@dataclass
class ImportPlan:
    path: Path
    format: str
    options: ImportOptions
    sheets: list[SheetPlan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[RowError] = field(default_factory=list)  # sheet-level problems (no row to blame)
    metadata: dict[str, Any] = field(default_factory=dict)  # a PaxDesk workbook's metadata items

    def staged(self) -> Iterable[tuple[SheetPlan, StagedRow]]:
        for sheet in self.sheets:
            for row in sheet.rows:
                yield sheet, row

    @property
    def errors(self) -> list[RowError]:
        found = list(self.problems)
        for sheet in self.sheets:
            for row in sheet.rows:
                if row.errors:  # few rows have any: a test is cheaper than 100,000 empty extends
                    found.extend(row.errors)
        return found

    def count(self, action: str) -> int:
        return self.counts().get(action, 0)

    def counts(self) -> dict[str, int]:
        """Rows per action (insert, update, unchanged, error), in one pass."""
        found: dict[str, int] = {}
        for sheet in self.sheets:
            for action, number in Counter(row.action for row in sheet.rows).items():
                found[action] = found.get(action, 0) + number
        return found

    @property
    def deleted(self) -> int:
        return sum(len(sheet.deletions) for sheet in self.sheets)

    @property
    def writes(self) -> int:
        """How many rows writing the plan would insert, update or remove (refused rows not counted)."""
        counts = self.counts()
        return counts.get("insert", 0) + counts.get("update", 0) + self.deleted

    @property
    def refused(self) -> bool:
        """True when nothing may be written: errors under --on-error abort."""
        return bool(self.problems) or (self.options.on_error == "abort" and self.count("error") > 0)


@dataclass
class ImportResult:
    path: Path
    format: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    deleted: int = 0
    errors: list[RowError] = field(default_factory=list)
    written: bool = False
    dry_run: bool = False
    skipping_errors: bool = False  # --on-error skip: refused rows do not stop the good ones
    change_set_id: int | None = None
    backup: Path | None = None
    notes: list[str] = field(default_factory=list)
    failure: RowError | None = None  # why nothing was written although the rows were fine (also in errors)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        counts = (f"{self.inserted:,} inserted, {self.updated:,} updated, {self.unchanged:,} unchanged, "
                  f"{self.rejected:,} rejected" + (f", {self.deleted:,} link rows removed" if self.deleted else ""))
        if self.dry_run:
            verdict = "dry run, nothing written"
        elif self.written:
            verdict = "written"
        elif self.errors and not self.skipping_errors:
            verdict = "nothing written (fix the rows, or import with --on-error skip)"
        else:
            verdict = "nothing to write"
        return f"{self.path.name} ({self.format}): {counts}; {verdict}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "file": str(self.path), "format": self.format, "dry_run": self.dry_run,
            "written": self.written, "inserted": self.inserted, "updated": self.updated,
            "unchanged": self.unchanged, "rejected": self.rejected, "deleted": self.deleted,
            "change_set": self.change_set_id, "backup": str(self.backup) if self.backup else None,
            "notes": self.notes, "errors": [error.as_dict() for error in self.errors],
        }


def plain_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ") if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass
class SheetInfo:
    name: str
    kind: str  # un, paxdesk, mapped (a saved mapping fits), unknown, empty, metadata
    header_cells: list[str] = field(default_factory=list)
    header_index: int | None = None
    data_rows: int = 0
    mapping: ColumnMapping | None = None


def blank_row(row: list[Any]) -> bool:
    return all(is_blank(value) for value in row)


def metadata(sheet: SheetData) -> dict[str, Any]:
    """Item → value of a metadata sheet (two columns, header first)."""
    items = {}
    for row in sheet.rows:
        if len(row) >= 2 and isinstance(row[0], str) and row[0].strip():
            items[row[0].strip()] = row[1]
    return items

# --- Saved column mappings ---------------------------------------------------------------------------

def mapping_key(headers: Iterable[str]) -> str:
    return MAPPING_SETTING_PREFIX + header_signature(h for h in headers if h != REPORT_ERROR_HEADER)


def saved_mapping(headers: Iterable[str]) -> ColumnMapping | None:
    """The mapping last used for a sheet with these headers (in any order), if the database holds one."""
    if schema.database.obj is None:
        return None
    row = schema.Setting.get_or_none(schema.Setting.key == mapping_key(headers))
    if row is None:
        return None
    try:
        mapping = ColumnMapping.from_json(row.value)
    except (ValueError, KeyError, TypeError):
        return None
    return mapping if mapping.record_type in RECORD_TYPES else None


def save_mapping(headers: Iterable[str], mapping: ColumnMapping) -> None:
    set_setting(mapping_key(headers), mapping.to_json())


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
