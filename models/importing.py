"""Importing spreadsheets: UN contribution files (both vintages), PaxDesk data workbooks and any sheet through a
column mapping. Every row is read, reconciled, validated and compared with the database before anything is
written (`stage_import` → ImportPlan, also the wizard's preview); then `apply_plan` writes all accepted rows in
one transaction, as one change set that `services.revert_change_set` undoes in one step.

Large files stay fast: per-value verdicts are memoised (validate_record's memo), references are resolved once per
distinct text, existing rows are read in one query per record type, and rows and change-log entries are written
with executemany in chunks.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import peewee
from rapidfuzz import fuzz, process

from models import dialect, schema
from models.codes import code_list
from models.dates import DateError, parse_exact_date
from models.db import backup_database, set_setting
from models.excel_read import (
    SheetData,
    WorkbookFile,
    WorkbookRefused,
    find_header_row,
    guess_header_row,
    header_cells,
    header_signature,
    is_blank,
    normalise_header,
    open_workbook,
)
from models.progress import NO_PROGRESS, Progress
from models.reconcile import describe_miss, match_actor, match_record
from models.records import RECORD_TYPES, FieldSpec, LinkSpec, RecordType, record_type
from models.services import ChangeRecorder, WriteFailed, recording
from models.validation import fold, validate_link_row, validate_record
from models.workbook_format import (
    DATABASE_ITEM,
    FORMAT_ITEM,
    FORMAT_NAME,
    FORMAT_VERSION,
    FORMAT_VERSION_ITEM,
    ID_COLUMN,
    METADATA_SHEET,
    SheetLayout,
    link_layout,
    record_layout,
    record_order,
)

FORMATS = ("auto", "un", "paxdesk", "mapped")
MODES = ("upsert", "insert")
ERROR_POLICIES = ("abort", "skip")
REPORT_ERROR_HEADER = "PaxDesk import errors"  # the error column of a report; ignored when the report is imported
MAPPING_SETTING_PREFIX = "import-mapping:"
WRITE_CHUNK = 5_000
STAGE_CHUNK = 5_000

# The UN's contribution files: normalised header → what the column holds. Both vintages (the data hub's
# lower-case one with contribution_id and m49_code, the older Title_Case one) normalise to these names.
UN_COLUMNS = {
    "contribution_id": "un_id", "contributing_country": "country", "isocode3": "iso3", "m49_code": "m49",
    "mission_acronym": "mission", "personnel_type": "personnel_type", "female_personnel": "female",
    "male_personnel": "male", "last_reporting_date": "date",
}
UN_REQUIRED = ("contributing_country", "mission_acronym", "personnel_type", "female_personnel", "male_personnel",
               "last_reporting_date")
# Where a contribution field's problem is shown in a UN sheet.
UN_FIELD_COLUMNS = {
    "reporting_date": "date", "contributor": "country", "mission": "mission", "mission_note": "mission",
    "personnel_type": "personnel_type", "female_count": "female", "male_count": "male", "total_count": "female",
}


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
        for _, row in self.staged():
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
        elif self.errors:
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


# --- Previewing a plan ----------------------------------------------------------------------------------

ACTION_WORDS = {"insert": "New", "update": "Changed", "unchanged": "Unchanged", "error": "Error"}


class PlanPreview:
    """What the wizard's preview shows of each staged row: its status, what it is, and what changes (old →
    new, in display values: names for references, labels for codes, dates in words)."""

    def __init__(self, plan: ImportPlan):
        self.plan = plan
        self._names = NameBook()

    def _fields(self, sheet: SheetPlan) -> tuple[FieldSpec, ...]:
        return sheet.spec.link(sheet.link).fields if sheet.link else sheet.spec.fields

    def shown(self, spec_field: FieldSpec, value: Any) -> str:
        from models.queries import display_value

        if spec_field.kind == "ref" and value is not None:
            return self._names.name(spec_field.ref, value)
        return str(display_value(spec_field, value))

    def label(self, sheet: SheetPlan, staged: StagedRow) -> str:
        if staged.values is None:  # a refused row: what it holds, as written
            return " · ".join(str(plain_value(v)) for v in staged.cells if not is_blank(v))[:200]
        if sheet.link:
            owner = staged.values.get(sheet.spec.link(sheet.link).owner_field or "record_id")
            parts = [self.shown(f, staged.values.get(f.name)) for f in self._fields(sheet)]
            return f"{self._names.name(sheet.spec.key, owner)}: {', '.join(p for p in parts if p)}"
        return staged.label or self._names.label(sheet.spec, staged.values)

    def changes(self, sheet: SheetPlan, staged: StagedRow) -> list[tuple[str, str, str]]:
        """(field label, old, new) of an update."""
        if staged.action != "update" or not staged.changes:
            return []
        return [(f.label, self.shown(f, staged.old.get(f.name)), self.shown(f, staged.changes[f.name]))
                for f in self._fields(sheet) if f.name in staged.changes]

    def details(self, sheet: SheetPlan, staged: StagedRow) -> str:
        if staged.errors:
            return "; ".join(f"{e.column}: {e.reason}" if e.column else e.reason for e in staged.errors)
        if staged.action == "update":
            return "; ".join(f"{name}: {old or '(empty)'} → {new or '(empty)'}"
                             for name, old, new in self.changes(sheet, staged))
        return ""


# --- The source: a workbook read once ----------------------------------------------------------------

@dataclass
class SheetInfo:
    name: str
    kind: str  # un, paxdesk, mapped (a saved mapping fits), unknown, empty, metadata
    header_cells: list[str] = field(default_factory=list)
    header_index: int | None = None
    data_rows: int = 0
    mapping: ColumnMapping | None = None


class ImportSource:
    """A checked workbook whose sheets are read at most once (the wizard inspects, previews and imports the
    same rows). Close it, or use it as a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.workbook: WorkbookFile = open_workbook(self.path)
        self._sheets: dict[str, SheetData] = {}
        self._described: dict[tuple[str, bool], SheetInfo] = {}

    def __enter__(self) -> ImportSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.workbook.close()

    @property
    def sheet_names(self) -> list[str]:
        return self.workbook.sheet_names

    def sheet(self, name: str) -> SheetData:
        if name not in self._sheets:
            self._sheets[name] = self.workbook.sheet(name)
        return self._sheets[name]

    def is_paxdesk(self) -> bool:
        if METADATA_SHEET in self.sheet_names:
            items = metadata(self.sheet(METADATA_SHEET))
            if items.get(FORMAT_ITEM) == FORMAT_NAME:
                return True
        return any(self._matches_layout(record_layout(RECORD_TYPES[key])) for key in RECORD_TYPES)

    def _matches_layout(self, layout: SheetLayout) -> bool:
        if layout.name not in self.sheet_names:
            return False
        rows = self.sheet(layout.name).rows
        return find_header_row(rows, [normalise_header(h) for h in layout.headers]) is not None

    def describe(self, name: str, with_mappings: bool = True) -> SheetInfo:
        """What a sheet looks like: its format, header and number of data rows (saved mappings need the
        database, hence `with_mappings`)."""
        if (name, with_mappings) not in self._described:
            self._described[name, with_mappings] = self._describe(name, with_mappings)
        return self._described[name, with_mappings]

    def _describe(self, name: str, with_mappings: bool) -> SheetInfo:
        if name == METADATA_SHEET:
            return SheetInfo(name, "metadata")
        rows = self.sheet(name).rows
        if not rows:
            return SheetInfo(name, "empty")
        index = find_header_row(rows, UN_REQUIRED)
        kind = "un"
        if index is None:
            index = guess_header_row(rows)
            kind = "unknown"
        if index is None:
            return SheetInfo(name, "unknown", data_rows=len(rows))
        headers = header_cells(rows[index])
        data = sum(1 for row in rows[index + 1:] if row.count("") != len(row))
        info = SheetInfo(name, kind, headers, index, data)
        if kind == "unknown" and with_mappings:
            info.mapping = saved_mapping(headers)
            if info.mapping is not None:
                info.kind = "mapped"
        return info


def _blank_row(row: list[Any]) -> bool:
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


def mappable_fields(key: str) -> list[FieldSpec]:
    return list(record_type(key).fields)


# --- Finding referenced records ----------------------------------------------------------------------

class Resolver:
    """References written as text (a country's name, alias or ISO code; a mission's acronym; a title),
    resolved once per distinct text through models.reconcile. A miss is a message naming the closest
    candidates with their scores; never a guess."""

    def __init__(self):
        self._records: dict[tuple[str, str], tuple[int | None, str | None]] = {}
        self._contributors: dict[tuple, tuple[int | None, str | None, str | None]] = {}
        self._codes: dict[tuple[str, str], str] = {}
        self._by_iso: dict[str, int] | None = None
        self._known_names: dict[str, int] | None = None

    def _agrees(self, actor_id: int, name: str) -> bool:
        """Whether `name` is the actor's own name or alias: the common case of a UN row whose ISO code
        matched, confirmed from one index instead of a reconcile lookup per country."""
        if self._known_names is None:
            known: dict[str, int] = {}
            for row_id, actor_name in schema.Actor.select(schema.Actor.id, schema.Actor.name).tuples():
                known.setdefault(fold(actor_name), row_id)
            for actor, key in schema.ActorAlias.select(schema.ActorAlias.actor, schema.ActorAlias.alias_key).tuples():
                known[key] = actor
            self._known_names = known
        return self._known_names.get(fold(name)) == actor_id

    def record(self, key: str, text: Any) -> tuple[int | None, str | None]:
        """(id, None) or (None, why not)."""
        value = _text(text)
        cache_key = (key, value)
        if cache_key not in self._records:
            if key == "missions":
                found = match_record(key, value.strip())
            elif key == "actors":
                found = match_actor(value)
            else:
                found = match_record(key, value)
            self._records[cache_key] = (found, None) if found is not None else (None, describe_miss(key, value))
        return self._records[cache_key]

    def contributor(self, name: Any, iso: Any, m49: Any) -> tuple[int | None, str | None, str | None]:
        """(actor id, None, None) or (None, role of the column to blame, why)."""
        cache_key = (name, iso, m49)  # cells are hashable; distinct cells are a few hundred in a UN file
        if cache_key in self._contributors:
            return self._contributors[cache_key]
        name_text, iso_text, m49_text = (_text(part).strip() for part in cache_key)
        result: tuple[int | None, str | None, str | None]
        by_iso = by_name = None
        if iso_text:
            if self._by_iso is None:
                self._by_iso = {code: row_id for row_id, code in schema.Actor.select(
                    schema.Actor.id, schema.Actor.iso3).where(schema.Actor.iso3.is_null(False)).tuples()}
            by_iso = self._by_iso.get(iso_text.upper()) if len(iso_text) == 3 else None
        if name_text:
            by_name = by_iso if by_iso is not None and self._agrees(by_iso, name_text) else \
                self.record("actors", name_text)[0]
        if iso_text and by_iso is None:
            if not name_text:
                why = f"No state with ISO 3166 code '{iso_text}'"
            elif by_name is not None:
                why = (f"No state with ISO 3166 code '{iso_text}' ('{name_text}' is {_actor_name(by_name)}: correct "
                       "or clear the code)")
            else:
                why = f"No state with ISO 3166 code '{iso_text}', and {describe_miss('actors', name_text)}"
            result = (None, "iso3", why)
        elif by_iso is not None and by_name is not None and by_iso != by_name:
            result = (None, "country", f"The ISO code {iso_text.upper()} is {_actor_name(by_iso)}, but "
                      f"'{name_text}' is {_actor_name(by_name)}")
        elif by_iso is not None:
            result = (by_iso, None, None)
        elif by_name is not None:
            result = (by_name, None, None)
        elif name_text:
            result = (None, "country", describe_miss("actors", name_text))
        elif m49_text:
            found = _actor_by_m49(m49_text)
            result = (found, None, None) if found else (None, "m49", f"No state with UN M49 code '{m49_text}'")
        else:
            result = (None, "country", "Contributing country is required (a name or an ISO code)")
        self._contributors[cache_key] = result
        return result

    def code_miss(self, spec: FieldSpec, value: Any) -> str:
        """Why a code cell matches no code, with the closest codes and their scores."""
        text = _text(value).strip()
        cache_key = (spec.codes or "", text)
        if cache_key not in self._codes:
            codes = code_list(spec.codes)
            choices = {codes.labels[code]: code for code in codes.codes}
            near = process.extract(text, list(choices), scorer=fuzz.WRatio, processor=fold, limit=3)
            hint = ", ".join(f"{name} ({score:.0f}%)" for name, score, _ in near)
            allowed = "the UN's five personnel types" if spec.codes == "personnel_type" else "the allowed values"
            self._codes[cache_key] = f"{spec.label} '{text}' is not one of {allowed}; closest: {hint}"
        return self._codes[cache_key]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _actor_by_m49(text: str) -> int | None:
    try:
        number = int(float(text))
    except ValueError:
        return None
    row = schema.Actor.get_or_none(schema.Actor.m49 == number)
    return row.id if row else None


def _actor_name(actor_id: int) -> str:
    row = schema.Actor.get_or_none(schema.Actor.id == actor_id)
    return row.name if row else f"#{actor_id}"


class NameBook:
    """Names of referenced records for change-log labels and the preview, read once per record type and kept
    up to date with the rows being imported."""

    def __init__(self):
        self._names: dict[str, dict[int, str]] = {}

    def _load(self, key: str) -> dict[int, str]:
        if key not in self._names:
            spec = record_type(key)
            model = spec.model
            if spec.name_field == "id":
                self._names[key] = {}
            else:
                column = getattr(model, spec.name_field)
                self._names[key] = {rid: str(name) for rid, name in model.select(model.id, column).tuples()}
        return self._names[key]

    def name(self, key: str, record_id: int | None) -> str:
        if record_id is None:
            return ""
        return self._load(key).get(record_id, f"#{record_id}")

    def remember(self, key: str, record_id: int | None, values: dict[str, Any]) -> None:
        spec = record_type(key)
        if record_id is not None and spec.name_field != "id" and values.get(spec.name_field):
            self._load(key)[record_id] = str(values[spec.name_field])

    def label(self, spec: RecordType, values: dict[str, Any]) -> str:
        """services.record_label, with referenced names from this book instead of a query each."""
        return self.labeller(spec)(values)

    def labeller(self, spec: RecordType) -> Callable[[dict[str, Any]], str]:
        """A function giving services.record_label of a row of `spec` (fast: 100,000 log entries need one)."""
        name_field = spec.name_field if spec.name_field != "id" else None
        parts = [(name, self._load(spec.field(name).ref) if spec.field(name).kind == "ref" else None)
                 for name in spec.natural_key]
        texts: dict[Any, str] = {}
        fallback = f"{spec.singular} #"

        def label(values: dict[str, Any]) -> str:
            if name_field is not None and values.get(name_field):
                return str(values[name_field])
            shown = []
            for name, names in parts:
                value = values.get(name)
                if value is None or value == "":
                    continue
                if names is not None:
                    shown.append(names.get(value) or f"#{value}")
                elif value.__class__ is str:
                    shown.append(value)
                else:
                    text = texts.get(value)
                    if text is None:
                        text = texts[value] = str(_plain(value))
                    shown.append(text)
            return " · ".join(shown) or f"{fallback}{values.get('id')}"

        return label


# --- Cells → raw values for validation -----------------------------------------------------------------

EXCEL_EPOCH = dt.datetime(1899, 12, 30)


def excel_serial_date(number: float) -> dt.date | None:
    """An Excel date serial (a date cell without a date format) as a date, within plausible years."""
    if 1 <= number < 2_958_466:
        return (EXCEL_EPOCH + dt.timedelta(days=number)).date()
    return None


def cell_to_raw(spec: FieldSpec, value: Any) -> Any:
    """A cell as read → the raw value validation expects for the field (blank → None)."""
    if value is None or value == "" or (isinstance(value, str) and not value.strip()):
        return None
    kind = spec.kind
    if isinstance(value, float) and value.is_integer() and kind in ("text", "longtext", "edtf", "code", "int",
                                                                      "ref"):
        value = int(value)
    if kind == "date":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return excel_serial_date(value) or value
        return value
    if kind == "edtf":
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()[:10]
        return str(value)
    if kind in ("text", "longtext", "code"):
        if isinstance(value, dt.datetime):
            return plain_value(value)
        if isinstance(value, dt.date):
            return value.isoformat()
        return str(value) if not isinstance(value, str) else value
    if kind == "bool" and isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    return value


# --- Natural keys and existing rows --------------------------------------------------------------------

CASELESS_KEY_FIELDS = ("name", "title", "acronym")


def natural_key(spec: RecordType, values: dict[str, Any]) -> tuple:
    """The record's natural key as services.find_by_natural_key compares it (names without case)."""
    if spec.key == "contributions":
        # A named mission's figure is keyed without the note, as the UN keys it.
        get = values.get
        mission = get("mission")
        return (get("reporting_date"), get("contributor"), mission, get("personnel_type"),
                None if mission is not None else get("mission_note"))
    parts = []
    for name in spec.natural_key:
        value = values.get(name)
        if name in CASELESS_KEY_FIELDS and isinstance(value, str):
            value = value.casefold()
        parts.append(value)
    return tuple(parts)


class Existing:
    """Stored rows of one record type, by natural key and by id."""

    def __init__(self, spec: RecordType, rows: Iterable[dict[str, Any]]):
        self.spec = spec
        self.by_id: dict[int, dict[str, Any]] = {}
        self.by_key: dict[tuple, dict[str, Any]] = {}
        for row in rows:
            self.by_id[row["id"]] = row
            self.by_key[natural_key(spec, row)] = row

    @classmethod
    def all_of(cls, spec: RecordType) -> Existing:
        return cls(spec, spec.model.select().dicts())

    @classmethod
    def contributions_on(cls, dates: Iterable[dt.date]) -> Existing:
        """Only the reporting dates a UN file holds: one query (in chunks of the engine's parameter limit)."""
        model = schema.Contribution
        wanted = sorted(set(dates))
        rows: list[dict] = []
        for start in range(0, len(wanted), 500):
            rows.extend(model.select().where(model.reporting_date.in_(wanted[start:start + 500])).dicts())
        return cls(RECORD_TYPES["contributions"], rows)


def compare(spec: RecordType, clean: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """The fields whose cleaned value differs from the stored one."""
    changes = {}
    for spec_field in spec.fields:
        name = spec_field.name
        new, old = clean.get(name), stored.get(name)
        if new != old and not (new in (None, "") and old in (None, "")):
            changes[name] = new
    return changes


# --- Staging -----------------------------------------------------------------------------------------

class _Stage:
    """State shared by the sheets of one plan: caches, memo, the rows already claimed by natural key."""

    def __init__(self, plan: ImportPlan, progress: Progress):
        self.plan = plan
        self.options = plan.options
        self.progress = progress
        self.resolver = Resolver()
        self.names = NameBook()
        self.memo: dict = {}
        self.seen: dict[str, dict[tuple, tuple[str, int]]] = {}
        self.total_rows = 0
        self.done_rows = 0

    def tick(self, count: int = 1) -> None:
        self.done_rows += count
        if self.done_rows % STAGE_CHUNK < count:
            self.progress.report(self.done_rows, max(self.total_rows, self.done_rows), "Checking rows…")

    def claim(self, spec: RecordType, key: tuple, sheet: str, row: int) -> str | None:
        """None, or why this natural key was already taken by an earlier row of the file."""
        seen = self.seen.setdefault(spec.key, {})
        earlier = seen.get(key)
        if earlier is not None:
            where = f"row {earlier[1]}" if earlier[0] == sheet else f"sheet '{earlier[0]}', row {earlier[1]}"
            return f"The same {spec.singular} as {where} (its {_key_words(spec)} repeat)"
        seen[key] = (sheet, row)
        return None

    def settle(self, spec: RecordType, staged: StagedRow, clean: dict, existing: Existing, sheet: str,
               key_column: tuple[str, int | None]) -> None:
        """Decide insert / update / unchanged for a valid row, by its natural key."""
        key = natural_key(spec, clean)
        repeated = self.claim(spec, key, sheet, staged.row)
        if repeated:
            staged.errors.append(RowError(sheet, staged.row, key_column[0], None, repeated, key_column[1]))
            staged.action = "error"
            return
        stored = existing.by_key.get(key)
        self._settle_against(spec, staged, clean, stored, sheet, key_column)

    def _settle_against(self, spec: RecordType, staged: StagedRow, clean: dict, stored: dict | None, sheet: str,
                        key_column: tuple[str, int | None]) -> None:
        staged.values = clean
        if stored is None:
            staged.action = "insert"
            return
        if self.options.mode == "insert":
            staged.errors.append(RowError(
                sheet, staged.row, key_column[0], None,
                f"A {spec.singular} '{self.names.label(spec, clean)}' already exists (#{stored['id']}); "
                "import with --mode upsert to update it", key_column[1]))
            staged.action = "error"
            return
        staged.record_id = stored["id"]
        staged.old = stored
        changes = compare(spec, clean, stored)
        if changes:
            staged.action = "update"
            staged.changes = changes
        else:
            staged.action = "unchanged"


def _key_words(spec: RecordType) -> str:
    names = [spec.field(n).label.lower() for n in spec.natural_key
             if not (spec.key == "contributions" and n == "mission_note")]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]


@contextmanager
def _bulk_allocation() -> Iterator[None]:
    """Pause the cyclic garbage collector while hundreds of thousands of row objects are made: each
    collection would rescan all of them (it tripled the cost of staging), and they hold no cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def stage_import(source: ImportSource, options: ImportOptions, progress: Progress = NO_PROGRESS) -> ImportPlan:
    """Read, reconcile, validate and compare every row; write nothing. The database must be open."""
    with _bulk_allocation():
        return _stage_import(source, options, progress)


def _stage_import(source: ImportSource, options: ImportOptions, progress: Progress) -> ImportPlan:
    options.check()
    if options.mapping is not None and not options.sheet:
        raise ImportRefused("Say which sheet the column mapping is for")
    kind = detect_format(source, options)
    plan = ImportPlan(source.path, kind, options)
    stage = _Stage(plan, progress)
    if kind == "paxdesk":
        _stage_paxdesk(source, stage)
    else:
        names = [options.sheet] if options.sheet else source.sheet_names
        for name in names:
            info = source.describe(name)
            if kind == "un" and info.kind == "un":
                _stage_un(source.sheet(name), info, stage)
            elif kind == "mapped" and info.header_index is not None and (
                    options.mapping is not None or info.mapping is not None):
                _stage_mapped(source.sheet(name), info, options.mapping or info.mapping, stage)
            elif info.kind not in ("metadata",):
                plan.notes.append(f"Sheet '{name}' was not imported: "
                                  + ("it is empty" if info.kind == "empty" else "its columns are not a known format"))
    if not plan.sheets and not plan.problems:
        raise ImportRefused(f"{source.path.name}: nothing to import (no sheet holds rows in a known layout)")
    if sum(len(sheet.rows) for sheet in plan.sheets) == 0 and not plan.problems:
        raise ImportRefused(f"{source.path.name}: the header is there but no rows follow it; nothing to import")
    progress.report(stage.done_rows, max(stage.total_rows, stage.done_rows), "Checked")
    return plan


def detect_format(source: ImportSource, options: ImportOptions, saved_mappings: bool = True) -> str:
    """un, paxdesk or mapped for this source and these options; ImportRefused when none fits. Saved mappings
    live in the database: pass saved_mappings=False before one is open."""
    if options.sheet and options.sheet not in source.sheet_names:
        raise ImportRefused(f"{source.path.name} has no sheet '{options.sheet}' "
                            f"(it has: {', '.join(source.sheet_names)})")
    wanted = options.format
    if wanted in ("auto", "paxdesk") and not options.sheet and options.mapping is None and source.is_paxdesk():
        return "paxdesk"
    if wanted == "paxdesk":
        raise ImportRefused(f"{source.path.name} is not a PaxDesk data workbook (no '{METADATA_SHEET}' sheet naming "
                            f"the format, no sheet laid out as PaxDesk exports)")
    names = [options.sheet] if options.sheet else source.sheet_names
    infos = [source.describe(name, with_mappings=saved_mappings and wanted != "un") for name in names]
    if options.mapping is not None and wanted in ("auto", "mapped"):
        return "mapped"
    if any(info.kind == "un" for info in infos) and wanted in ("auto", "un"):
        return "un"
    if wanted == "un":
        raise ImportRefused(f"{source.path.name}: no sheet has the UN contribution columns "
                            f"({', '.join(UN_REQUIRED)})")
    if any(info.kind == "mapped" for info in infos):
        return "mapped"
    if all(info.kind in ("empty", "metadata") for info in infos):
        raise ImportRefused(f"{source.path.name} holds no data (every sheet is empty)")
    unknown = next((info for info in infos if info.kind == "unknown"), None)
    headers = ", ".join(unknown.header_cells[:8]) if unknown and unknown.header_cells else "none found"
    raise ImportRefused(f"{source.path.name}: the columns are not a format PaxDesk knows (headers: {headers}); "
                        "map them to fields in the import wizard once, and the mapping is remembered")


# UN contribution files ------------------------------------------------------------------------------

def _stage_un(sheet: SheetData, info: SheetInfo, stage: _Stage) -> None:
    spec = RECORD_TYPES["contributions"]
    rows = sheet.rows
    header = rows[info.header_index]
    positions: dict[str, int] = {}
    for index, value in enumerate(header):
        role = UN_COLUMNS.get(normalise_header(value))
        if role is not None and role not in positions:
            positions[role] = index
    headers = {role: header_cells(header)[index] if index < len(header_cells(header)) else "" for role, index in
               positions.items()}
    plan_sheet = SheetPlan(sheet.name, "un", "contributions", None, header_cells(header),
                           sheet.row_number(info.header_index), sheet.first_column)
    stage.plan.sheets.append(plan_sheet)
    stage.total_rows += len(rows) - info.header_index - 1

    def column(role: str) -> tuple[str, int | None]:
        return headers.get(role, ""), positions.get(role)

    get = {role: positions.get(role) for role in UN_COLUMNS.values()}
    country_at, iso_at, m49_at, mission_at = get["country"], get["iso3"], get["m49"], get["mission"]
    type_at, female_at, male_at, date_at = get["personnel_type"], get["female"], get["male"], get["date"]
    width = max(positions.values()) + 1
    resolver, memo, name = stage.resolver, stage.memo, sheet.name
    type_spec = spec.field("personnel_type")
    contributors: dict[tuple, tuple[int | None, str | None, str | None]] = {}
    missions: dict[Any, tuple[int | None, str | None]] = {}
    dates: dict[Any, Any] = {}
    body = rows[info.header_index + 1:]
    first_row = sheet.row_number(info.header_index + 1)
    report_every = STAGE_CHUNK
    # Stored figures of the reporting dates the file holds, in one query before the rows are compared.
    existing = Existing.contributions_on(_reporting_dates({cells[date_at] for cells in body if len(cells) > date_at}))
    key_column = column("mission")
    seen = stage.seen.setdefault(spec.key, {})
    by_key = existing.by_key
    # The loop below runs 100,000 times for a year of UN data: lookups are inlined, dicts cache per cell text.
    for offset, cells in enumerate(body):
        if offset == report_every:
            stage.tick(report_every)
            report_every += STAGE_CHUNK
        if cells.count("") == len(cells) or (not cells[country_at] and not cells[mission_at] and _blank_row(cells)):
            continue
        if len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        staged = StagedRow(first_row + offset, cells)
        plan_sheet.rows.append(staged)
        who = (cells[country_at], cells[iso_at] if iso_at is not None else "",
               cells[m49_at] if m49_at is not None else "")
        found = contributors.get(who)
        if found is None:
            found = contributors[who] = resolver.contributor(*who)
        acronym = cells[mission_at]
        mission = missions.get(acronym)
        if mission is None:
            mission = missions[acronym] = resolver.record("missions", acronym) if not is_blank(acronym) \
                else (None, None)
        date = cells[date_at]
        if date.__class__ is float or date.__class__ is int:
            if date not in dates:
                dates[date] = excel_serial_date(date) or date
            date = dates[date]
        clean, report = validate_record(spec, {
            "reporting_date": date, "contributor": found[0], "mission": mission[0], "mission_note": "",
            "personnel_type": cells[type_at], "female_count": cells[female_at], "male_count": cells[male_at],
            "total_count": None}, memo)
        if found[2] or mission[1] or (report.issues and not report.ok):
            failed: dict[str, tuple[str, int | None, Any, str]] = {}
            if found[2]:
                head, at = column(found[1])
                failed["contributor"] = (head, at, cells[at] if at is not None else "", found[2])
            if mission[1]:
                head, at = column("mission")
                failed["mission"] = (head, at, acronym, mission[1])
            for issue in report.issues:
                if issue.field in failed or issue.severity != "error":
                    continue
                if issue.field == "total_count" and ("female_count" in failed or "male_count" in failed):
                    continue  # UN files hold no total: "give the total" would only echo the bad count
                head, at = column(UN_FIELD_COLUMNS.get(issue.field, ""))
                value = cells[at] if at is not None else ""
                message = issue.message
                if issue.field == "personnel_type" and not is_blank(value):
                    message = resolver.code_miss(type_spec, value)
                failed[issue.field] = (head, at, value, message)
            for head, at, value, message in failed.values():
                staged.errors.append(RowError(name, staged.row, head, value, message, at))
            continue
        mission = clean["mission"]
        key = (clean["reporting_date"], clean["contributor"], mission, clean["personnel_type"],
               None if mission is not None else clean["mission_note"])  # as natural_key() builds it
        earlier = seen.get(key)
        if earlier is not None:
            staged.errors.append(RowError(name, staged.row, key_column[0], None,
                                          stage.claim(spec, key, name, staged.row), key_column[1]))
            continue
        seen[key] = (name, staged.row)
        stored = by_key.get(key)
        if stored is None:
            staged.values = clean
            staged.action = "insert"
        else:
            stage._settle_against(spec, staged, clean, stored, name, key_column)
    stage.tick(len(body) - (report_every - STAGE_CHUNK))


def _reporting_dates(cells: Iterable[Any]) -> list[dt.date]:
    """The dates a column of reporting-date cells means (unreadable ones are left to validation)."""
    found = []
    for value in cells:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = excel_serial_date(value)
        try:
            found.append(parse_exact_date(value))
        except (DateError, TypeError, ValueError):
            continue
    return found


# Mapped sheets ----------------------------------------------------------------------------------------

def _stage_mapped(sheet: SheetData, info: SheetInfo, mapping: ColumnMapping, stage: _Stage) -> None:
    spec = record_type(mapping.record_type)
    rows = sheet.rows
    headers = info.header_cells
    by_header = {normalise_header(h): i for i, h in enumerate(headers) if h}
    fields: dict[str, int] = {}
    for header, field_name in mapping.columns.items():
        if not field_name or header == REPORT_ERROR_HEADER:
            continue
        if field_name not in {f.name for f in spec.fields}:
            raise ImportRefused(f"The column mapping names '{field_name}', which is not a field of "
                                f"{spec.label.lower()}")
        index = by_header.get(normalise_header(header))
        if index is None:
            raise ImportRefused(f"Sheet '{sheet.name}' has no column '{header}' that the mapping uses")
        fields[field_name] = index
    missing = [f.label for f in spec.fields if f.required and f.name not in fields]
    if missing:
        raise ImportRefused(f"The column mapping leaves out required fields of {spec.label.lower()}: "
                            f"{', '.join(missing)}")
    plan_sheet = SheetPlan(sheet.name, "mapped", spec.key, None, headers, sheet.row_number(info.header_index),
                           sheet.first_column, mapping=mapping)
    stage.plan.sheets.append(plan_sheet)
    stage.total_rows += len(rows) - info.header_index - 1
    existing = Existing.all_of(spec)
    pending = []
    first_row = sheet.row_number(info.header_index + 1)
    for offset, cells in enumerate(rows[info.header_index + 1:]):
        stage.tick()
        if _blank_row(cells):
            continue
        staged = StagedRow(first_row + offset, cells)
        plan_sheet.rows.append(staged)
        raw: dict[str, Any] = {}
        failed: dict[str, RowError] = {}
        for spec_field in spec.fields:
            index = fields.get(spec_field.name)
            value = cells[index] if index is not None and index < len(cells) else None
            head = headers[index] if index is not None else ""
            if spec_field.kind == "ref":
                raw[spec_field.name] = None
                if not is_blank(value):
                    found, why = stage.resolver.record(spec_field.ref, value)
                    raw[spec_field.name] = found
                    if why:
                        failed[spec_field.name] = RowError(sheet.name, staged.row, head, value, why, index)
            else:
                raw[spec_field.name] = cell_to_raw(spec_field, value)
        _validate_into(spec, raw, staged, failed, sheet.name, lambda n: _mapped_column(n, fields, headers),
                       stage)
        if not staged.errors:
            pending.append((staged, staged.values))
    key_name = spec.natural_key[0]
    key_column = _mapped_column(key_name, fields, headers)
    for staged, clean in pending:
        stage.settle(spec, staged, clean, existing, sheet.name, key_column)


def _mapped_column(field_name: str, fields: dict[str, int], headers: list[str]) -> tuple[str, int | None]:
    index = fields.get(field_name)
    return (headers[index], index) if index is not None else ("", None)


def _validate_into(spec: RecordType, raw: dict, staged: StagedRow, failed: dict[str, RowError], sheet: str,
                   column_of: Callable[[str], tuple[str, int | None]], stage: _Stage) -> None:
    """validate_record, its issues turned into RowErrors on the right columns (a reference that could not be
    resolved keeps its own, better message)."""
    clean, report = validate_record(spec, raw, stage.memo)
    for issue in report.issues:
        if issue.field in failed or issue.severity != "error":
            continue
        head, at = column_of(issue.field)
        value = staged.cells[at] if at is not None and at < len(staged.cells) else ""
        message = issue.message
        if issue.field in {f.name for f in spec.fields} and spec.field(issue.field).kind == "code" \
                and not is_blank(value):
            message = stage.resolver.code_miss(spec.field(issue.field), value)
        failed[issue.field] = RowError(sheet, staged.row, head, value, message, at)
    staged.errors.extend(failed.values())
    staged.values = clean if not staged.errors else None


# PaxDesk data workbooks --------------------------------------------------------------------------------

class _Ids:
    """Workbook ids → database ids per record type, and the workbook ids whose rows were rejected."""

    def __init__(self):
        self.mapped: dict[str, dict[int, int]] = {}
        self.rejected: dict[str, dict[int, int]] = {}  # workbook id → row
        self.named: dict[str, dict[str, int]] = {}  # folded name of an accepted row → database id

    def target(self, key: str, workbook_id: int) -> int | None:
        return self.mapped.get(key, {}).get(workbook_id)


def _stage_paxdesk(source: ImportSource, stage: _Stage) -> None:
    plan = stage.plan
    items = metadata(source.sheet(METADATA_SHEET)) if METADATA_SHEET in source.sheet_names else {}
    plan.metadata = {key: value for key, value in items.items() if key != "Item"}
    version = items.get(FORMAT_VERSION_ITEM)
    if isinstance(version, int | float) and version > FORMAT_VERSION:
        raise ImportRefused(f"{source.path.name} was written by a newer PaxDesk (format version {version:g}); "
                            "update PaxDesk to import it")
    from models.excel_write import database_description

    same_database = bool(items.get(DATABASE_ITEM)) and str(items.get(DATABASE_ITEM)) == database_description()
    ids = _Ids()
    record_sheets: dict[str, SheetPlan] = {}
    for key in record_order():
        layout = record_layout(RECORD_TYPES[key])
        if layout.name in source.sheet_names:
            record_sheets[key] = _stage_record_sheet(source.sheet(layout.name), layout, ids, same_database, stage)
    for key in record_order():
        spec = RECORD_TYPES[key]
        for link in spec.links:
            layout = link_layout(spec, link)
            if layout.name in source.sheet_names:
                _stage_link_sheet(source.sheet(layout.name), layout, ids, same_database, record_sheets.get(key),
                                  stage)
    if not plan.sheets:
        raise ImportRefused(f"{source.path.name} names itself a PaxDesk data workbook but holds no record sheet")


def _layout_columns(sheet: SheetData, layout: SheetLayout, stage: _Stage) -> tuple[int, dict[str, int]] | None:
    wanted = [normalise_header(h) for h in layout.headers]
    index = find_header_row(sheet.rows, [ID_COLUMN])
    if index is None:
        stage.plan.problems.append(RowError(sheet.name, 0, "", None,
                                            f"No header row with an '{ID_COLUMN}' column; expected: "
                                            f"{', '.join(layout.headers)}"))
        return None
    positions = {}
    for position, value in enumerate(sheet.rows[index]):
        header = normalise_header(value)
        if header in wanted and header not in positions:
            positions[header] = position
    missing = [h for h in layout.headers if normalise_header(h) not in positions
               and not _optional_column(layout, h)]
    if missing:
        stage.plan.problems.append(RowError(sheet.name, sheet.row_number(index), "", None,
                                            f"Columns missing from the header: {', '.join(missing)}"))
        return None
    return index, positions


def _optional_column(layout: SheetLayout, header: str) -> bool:
    """Name columns of references are for people; a sheet may leave them out (and ids of new rows blank)."""
    column = next(c for c in layout.columns if c.header == header)
    return column.role in ("ref_name", "owner_name")


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,15}\s*", value):
        return int(value)
    return None


def _resolve_workbook_ref(spec_field: FieldSpec, id_cell: Any, name_cell: Any, ids: _Ids, same_database: bool,
                          stage: _Stage) -> tuple[int | None, str | None, bool]:
    """(database id, why not, whether the name column is to blame) for a reference given as id and name."""
    target = record_type(spec_field.ref)
    if not is_blank(id_cell):
        workbook_id = _whole(id_cell)
        if workbook_id is None:
            return None, f"{spec_field.label}: '{id_cell}' is not an id (a whole number)", False
        found = ids.target(target.key, workbook_id)
        if found is not None:
            return found, None, False
        rejected_row = ids.rejected.get(target.key, {}).get(workbook_id)
        if rejected_row is not None:
            return None, (f"{spec_field.label}: the {target.singular} #{workbook_id} was rejected "
                          f"(sheet '{target.label}', row {rejected_row})"), False
        if same_database and target.model.select().where(target.model.id == workbook_id).exists():
            return workbook_id, None, False
        if is_blank(name_cell):
            return None, (f"{spec_field.label}: no {target.singular} #{workbook_id} in the workbook or the "
                          "database"), False
    if is_blank(name_cell):
        return None, None, False
    # A name alone: a record of the workbook itself (not in the database until the import is written), else
    # one in the database.
    found = ids.named.get(target.key, {}).get(fold(_text(name_cell)))
    if found is not None:
        return found, None, True
    found, why = stage.resolver.record(target.key, name_cell)
    return found, why, True


def _stage_record_sheet(sheet: SheetData, layout: SheetLayout, ids: _Ids, same_database: bool,
                        stage: _Stage) -> SheetPlan | None:
    spec = layout.record_type
    found = _layout_columns(sheet, layout, stage)
    if found is None:
        return None
    index, positions = found
    headers = header_cells(sheet.rows[index])
    plan_sheet = SheetPlan(sheet.name, "paxdesk", spec.key, None, headers, sheet.row_number(index),
                           sheet.first_column)
    stage.plan.sheets.append(plan_sheet)
    rows = sheet.rows[index + 1:]
    stage.total_rows += len(rows)
    existing = Existing.all_of(spec)
    mapped = ids.mapped.setdefault(spec.key, {})
    rejected = ids.rejected.setdefault(spec.key, {})
    claimed: dict[int, int] = {}  # database id → row
    workbook_ids = {_whole(r[positions[ID_COLUMN]]) for r in rows if positions[ID_COLUMN] < len(r)}
    next_id = max([0, *existing.by_id, *(i for i in workbook_ids if i is not None)]) + 1
    id_at = positions[ID_COLUMN]

    def at(header: str) -> int | None:
        return positions.get(normalise_header(header))

    def cell(cells: list, header: str) -> Any:
        position = at(header)
        return cells[position] if position is not None and position < len(cells) else None

    def column_of(field_name: str) -> tuple[str, int | None]:
        spec_field = spec.field(field_name) if field_name in {f.name for f in spec.fields} else None
        header = f"{field_name}_id" if spec_field is not None and spec_field.kind == "ref" else field_name
        position = at(header)
        return (headers[position] if position is not None and position < len(headers) else header, position)

    first_row = sheet.row_number(index + 1)
    for offset, cells in enumerate(rows):
        stage.tick()
        if _blank_row(cells):
            continue
        staged = StagedRow(first_row + offset, cells)
        plan_sheet.rows.append(staged)
        workbook_id = _whole(cells[id_at]) if id_at < len(cells) else None
        failed: dict[str, RowError] = {}
        if id_at < len(cells) and not is_blank(cells[id_at]) and workbook_id is None:
            failed["id"] = RowError(sheet.name, staged.row, headers[id_at], cells[id_at],
                                    "The id must be a whole number (or empty for a new record)", id_at)
        raw: dict[str, Any] = {}
        for spec_field in spec.fields:
            if spec_field.kind == "ref":
                ref, why, by_name = _resolve_workbook_ref(
                    spec_field, cell(cells, f"{spec_field.name}_id"), cell(cells, spec_field.name), ids,
                    same_database, stage)
                raw[spec_field.name] = ref
                if why:
                    head = spec_field.name if by_name else f"{spec_field.name}_id"
                    position = at(head)
                    failed[spec_field.name] = RowError(sheet.name, staged.row, head, cell(cells, head), why, position)
            else:
                raw[spec_field.name] = cell_to_raw(spec_field, cell(cells, spec_field.name))
        _validate_into(spec, raw, staged, failed, sheet.name, column_of, stage)
        if staged.errors:
            if workbook_id is not None:
                rejected[workbook_id] = staged.row
            continue
        clean = staged.values
        key_column = column_of(spec.natural_key[0])
        key = natural_key(spec, clean)
        repeated = stage.claim(spec, key, sheet.name, staged.row)
        if repeated:
            staged.errors.append(RowError(sheet.name, staged.row, key_column[0], None, repeated, key_column[1]))
        stored = existing.by_key.get(key)
        if stored is None and same_database and workbook_id in existing.by_id:
            stored = existing.by_id[workbook_id]  # the same record, renamed in the workbook
        if stored is not None and stored["id"] in claimed and not staged.errors:
            staged.errors.append(RowError(sheet.name, staged.row, key_column[0], None,
                                          f"The same {spec.singular} as row {claimed[stored['id']]}",
                                          key_column[1]))
        if staged.errors:
            staged.action = "error"
            if workbook_id is not None:
                rejected[workbook_id] = staged.row
            continue
        stage._settle_against(spec, staged, clean, stored, sheet.name, key_column)
        if staged.action == "error":
            if workbook_id is not None:
                rejected[workbook_id] = staged.row
            continue
        if staged.action == "insert":
            if workbook_id is not None and workbook_id not in existing.by_id and workbook_id not in claimed:
                staged.record_id = workbook_id
            else:
                while next_id in existing.by_id or next_id in claimed or next_id in workbook_ids:
                    next_id += 1
                staged.record_id = next_id
                next_id += 1
        claimed[staged.record_id] = staged.row
        if workbook_id is not None:
            mapped[workbook_id] = staged.record_id
        if spec.name_field != "id" and clean.get(spec.name_field):
            ids.named.setdefault(spec.key, {}).setdefault(fold(str(clean[spec.name_field])), staged.record_id)
        stage.names.remember(spec.key, staged.record_id, clean)
    return plan_sheet


def _stage_link_sheet(sheet: SheetData, layout: SheetLayout, ids: _Ids, same_database: bool,
                      owners_sheet: SheetPlan | None, stage: _Stage) -> None:
    spec, link = layout.record_type, layout.link
    assert link is not None
    found = _layout_columns(sheet, layout, stage)
    if found is None:
        return
    index, positions = found
    headers = header_cells(sheet.rows[index])
    plan_sheet = SheetPlan(sheet.name, "paxdesk", spec.key, link.name, headers, sheet.row_number(index),
                           sheet.first_column)
    stage.plan.sheets.append(plan_sheet)
    rows = sheet.rows[index + 1:]
    stage.total_rows += len(rows)
    owner = layout.owner_field

    def at(header: str) -> int | None:
        return positions.get(normalise_header(header))

    def cell(cells: list, header: str) -> Any:
        position = at(header)
        return cells[position] if position is not None and position < len(cells) else None

    def column_of(field_name: str) -> tuple[str, int | None]:
        spec_field = next((f for f in link.fields if f.name == field_name), None)
        header = f"{field_name}_id" if spec_field is not None and spec_field.kind == "ref" else field_name
        position = at(header)
        return (headers[position] if position is not None and position < len(headers) else header, position)

    groups: dict[int, list[StagedRow]] = {}
    workbook_ids = [_whole(cell(r, ID_COLUMN)) for r in rows]
    first_row = sheet.row_number(index + 1)
    for offset, cells in enumerate(rows):
        stage.tick()
        if _blank_row(cells):
            continue
        staged = StagedRow(first_row + offset, cells)
        plan_sheet.rows.append(staged)
        owner_cell = cell(cells, f"{owner}_id")
        owner_id, why = _link_owner(spec, owner_cell, ids, same_database)
        failed: dict[str, RowError] = {}
        if why:
            failed["owner"] = RowError(sheet.name, staged.row, f"{owner}_id", owner_cell, why, at(f"{owner}_id"))
        raw: dict[str, Any] = {}
        for spec_field in link.fields:
            if spec_field.kind == "ref":
                ref, why, by_name = _resolve_workbook_ref(
                    spec_field, cell(cells, f"{spec_field.name}_id"), cell(cells, spec_field.name), ids,
                    same_database, stage)
                raw[spec_field.name] = ref
                if why:
                    head = spec_field.name if by_name else f"{spec_field.name}_id"
                    failed[spec_field.name] = RowError(sheet.name, staged.row, head, cell(cells, head), why, at(head))
            else:
                raw[spec_field.name] = cell_to_raw(spec_field, cell(cells, spec_field.name))
        clean, report = validate_link_row(link, raw)
        for issue in report.issues:
            if issue.field in failed or issue.severity != "error":
                continue
            head, position = column_of(issue.field)
            value = cells[position] if position is not None and position < len(cells) else ""
            failed[issue.field] = RowError(sheet.name, staged.row, head, value, issue.message, position)
        staged.errors.extend(failed.values())
        if staged.errors:
            continue
        staged.values = clean
        staged.label = link.label
        groups.setdefault(owner_id, []).append(staged)
    _settle_links(plan_sheet, spec, link, groups, owners_sheet, workbook_ids, stage)


def _link_owner(spec: RecordType, owner_cell: Any, ids: _Ids, same_database: bool) -> tuple[int | None, str | None]:
    workbook_id = _whole(owner_cell)
    if workbook_id is None:
        return None, f"The {spec.singular} id '{plain_value(owner_cell) or ''}' is not a whole number"
    found = ids.target(spec.key, workbook_id)
    if found is not None:
        return found, None
    rejected_row = ids.rejected.get(spec.key, {}).get(workbook_id)
    if rejected_row is not None:
        return None, f"Its {spec.singular} #{workbook_id} was rejected (sheet '{spec.label}', row {rejected_row})"
    if same_database and spec.model.select().where(spec.model.id == workbook_id).exists():
        return workbook_id, None
    return None, f"No {spec.singular} #{workbook_id} in the sheet '{spec.label}'"


def _link_identity(link: LinkSpec, values: dict[str, Any]) -> tuple:
    return tuple(values.get(f.name) if values.get(f.name) != "" else None for f in link.fields)


def _settle_links(plan_sheet: SheetPlan, spec: RecordType, link: LinkSpec, groups: dict[int, list[StagedRow]],
                  owners_sheet: SheetPlan | None, workbook_ids: list[int | None], stage: _Stage) -> None:
    """Per owner, the workbook's rows replace the stored ones: equal rows are unchanged, new ones inserted,
    stored rows the workbook no longer has are removed (only for owners whose record row is in the workbook)."""
    model = link.model
    owners = set(groups)
    if owners_sheet is not None:
        owners |= {row.record_id for row in owners_sheet.rows if row.action != "error" and row.record_id}
    stored_rows = _stored_links(spec, link, owners)
    taken_ids = {row_id for (row_id,) in model.select(model.id).tuples()} if groups else set()
    claimed: set[int] = set()
    next_id = max([0, *taken_ids, *(i for i in workbook_ids if i is not None)]) + 1
    alias_owner = _alias_owners() if model is schema.ActorAlias else {}
    for owner_id in owners:
        stored = list(stored_rows.get(owner_id, []))
        seen: dict[tuple, int] = {}
        for staged in groups.get(owner_id, []):
            identity = _link_identity(link, staged.values)
            dedupe = tuple(v for f, v in zip(link.fields, identity, strict=True) if f.name not in ("notes", "quote"))
            if dedupe in seen:
                staged.errors.append(RowError(plan_sheet.name, staged.row, "", None,
                                              f"Repeats row {seen[dedupe]} of this sheet"))
                staged.action = "error"
                continue
            seen[dedupe] = staged.row
            if model is schema.ActorAlias:
                holder = alias_owner.get(fold(staged.values["alias"]))
                if holder is not None and holder[0] != owner_id:
                    staged.errors.append(RowError(plan_sheet.name, staged.row, "alias", staged.values["alias"],
                                                  f"The alias '{staged.values['alias']}' already belongs to "
                                                  f"{_actor_name(holder[0])}"))
                    staged.action = "error"
                    continue
            match = next((row for row in stored if _link_identity(link, row) == identity), None)
            staged.values = {**_owner_values(spec, link, owner_id), **staged.values}
            if model is schema.ActorAlias:  # aliases are matched by their folded form, a column of its own
                staged.values["alias_key"] = fold(staged.values["alias"])
            if match is not None:
                stored.remove(match)
                staged.action = "unchanged"
                staged.record_id = match["id"]
                staged.old = match
                continue
            staged.action = "insert"
            workbook_id = _whole(_first(staged.cells, plan_sheet, ID_COLUMN))
            if workbook_id is not None and workbook_id not in taken_ids and workbook_id not in claimed:
                staged.record_id = workbook_id
            else:
                while next_id in taken_ids or next_id in claimed:
                    next_id += 1
                staged.record_id = next_id
                next_id += 1
            claimed.add(staged.record_id)
        plan_sheet.deletions.extend(stored)


def _first(cells: list, plan_sheet: SheetPlan, header: str) -> Any:
    for position, value in enumerate(plan_sheet.header_cells):
        if normalise_header(value) == header:
            return cells[position] if position < len(cells) else None
    return None


def _alias_owners() -> dict[str, tuple[int, int]]:
    return {key: (actor, row_id) for row_id, actor, key in
            schema.ActorAlias.select(schema.ActorAlias.id, schema.ActorAlias.actor, schema.ActorAlias.alias_key)
            .tuples()}


def _owner_values(spec: RecordType, link: LinkSpec, owner_id: int) -> dict[str, Any]:
    if link.owner_field is None:
        return {"record_type": spec.key, "record_id": owner_id}
    return {link.owner_field: owner_id}


def _stored_links(spec: RecordType, link: LinkSpec, owners: set[int]) -> dict[int, list[dict]]:
    model = link.model
    found: dict[int, list[dict]] = {}
    wanted = sorted(owners)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        if link.owner_field is None:
            query = model.select().where(model.record_type == spec.key, model.record_id.in_(chunk))
            owner_of = "record_id"
        else:
            query = model.select().where(getattr(model, link.owner_field).in_(chunk))
            owner_of = link.owner_field
        for row in query.dicts():
            found.setdefault(row[owner_of], []).append(row)
    return found


# --- Writing -----------------------------------------------------------------------------------------

def _json_encoder() -> Callable[[dict], str]:
    """JSON text of a snapshot, as services.log would write it, with the C encoder built once (json.dumps
    builds one per call, which is most of its cost for 100,000 small objects)."""
    try:
        from json.encoder import c_make_encoder, encode_basestring
    except ImportError:  # pragma: no cover - CPython always has it
        c_make_encoder = None
    if c_make_encoder is None:  # pragma: no cover
        return lambda values: json.dumps(values, ensure_ascii=False)
    encoder = c_make_encoder(None, None, encode_basestring, None, ": ", ", ", False, False, True)
    return lambda values: "".join(encoder(values, 0))


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


class _Writer:
    """Writes the accepted rows of a plan inside the import's transaction, with executemany in chunks.

    Change-log entries: an inserted record is logged with its label and, as new values, its id and version
    only: that is what revert_change_set needs to undo it, and its values are the row itself (any later edit
    logs old → new in full, a delete logs the whole row). Writing every field of 100,000 new rows into the log
    as well cost a fifth of the import. Link rows are logged in full (the change feed reads their owner from
    them), and so are updates (old and new) and removals (the old row).
    """

    def __init__(self, recorder: ChangeRecorder, progress: Progress, total: int):
        self.recorder = recorder
        self.progress = progress
        self.total = total
        self.done = 0
        self.db = dialect.current()
        self.sqlite = dialect.is_sqlite(self.db)
        self.now = schema.utc_now()
        self.encode = _json_encoder()
        self.touched: set[type[peewee.Model]] = set()
        self.names = NameBook()

    def advance(self, count: int, message: str) -> None:
        self.done += count
        self.progress.report(self.done, self.total, message)

    def _param(self, value: Any) -> Any:
        if self.sqlite:
            if isinstance(value, dt.datetime):
                return value.isoformat(sep=" ")
            if isinstance(value, dt.date):
                return value.isoformat()
        return value

    def _executemany(self, sql: str, rows: list[tuple]) -> int:
        with peewee.__exception_wrapper__:
            cursor = self.db.cursor()
            cursor.executemany(sql, rows)
            return cursor.rowcount

    def insert(self, sheet: SheetPlan, rows: list[StagedRow]) -> None:
        model = sheet.model
        self.touched.add(model)
        fields = model._meta.sorted_fields
        names = [f.name for f in fields]
        assert names[:4] == ["id", "created_at", "updated_at", "version"], names
        columns = ", ".join(f'"{f.column_name}"' for f in fields)
        sql = f'INSERT INTO "{model._meta.table_name}" ({columns}) VALUES ({", ".join([self.db.param] * len(fields))})'
        # Exact dates go in as ISO text: what the change log records, and what SQLite stores (PostgreSQL casts it).
        value_names = names[4:]
        dated = [i for i, f in enumerate(fields[4:]) if f.field_type in ("DATE", "DATETIME")]
        iso: dict[Any, str] = {}
        table, label, encode = model._meta.table_name, self._label_function(sheet), self.encode
        now_text, now_param = self.now.isoformat(), self._param(self.now)
        log_sql = _inserted_log_sql(sheet) if self.sqlite and _sqlite_has_json(self.db) else None
        compact = sheet.link is None
        for start in range(0, len(rows), WRITE_CHUNK):
            chunk = rows[start:start + WRITE_CHUNK]
            params, entries = [], []
            # On PostgreSQL from the table's sequence: a save on another connection meanwhile takes no id used here.
            fresh = iter(dialect.next_ids(model, sum(staged.record_id is None for staged in chunk)))
            for staged in chunk:
                if staged.record_id is None:
                    staged.record_id = next(fresh)
                values = list(map(staged.values.get, value_names))
                for i in dated:
                    value = values[i]
                    if value is not None:
                        text = iso.get(value)
                        if text is None:
                            text = iso[value] = value.isoformat()
                        values[i] = text
                record_id = staged.record_id
                params.append((record_id, now_param, now_param, 1, *values))
                if log_sql is None:
                    snapshot = {"id": record_id, "version": 1} if compact else \
                        dict(zip(names, (record_id, now_text, now_text, 1, *values), strict=True))
                    entries.append({"table_name": table, "record_id": record_id, "action": "insert",
                                    "record_label": label(staged), "old": None, "new": encode(snapshot)})
            self._executemany(sql, params)
            if log_sql is None:
                self.recorder.log_many(entries)
            else:
                self._log_inserted(log_sql, [row[0] for row in params])
            self.advance(len(chunk), f"Writing {sheet.title.lower()}…")

    def _log_inserted(self, log_sql: tuple[str, str], ids: list[int]) -> None:
        """The change-log entries of rows just inserted, written by SQLite from the rows themselves: the same
        snapshot and label services.log would write, without 100,000 rounds of JSON and labels in Python."""
        contiguous = ids[-1] - ids[0] + 1 == len(ids) and ids == sorted(ids)  # new ids of a UN file: a range
        with peewee.__exception_wrapper__:
            cursor = self.db.cursor()
            if contiguous:
                cursor.execute(log_sql[0], (self.recorder.change_set.id, ids[0], ids[-1]))
            else:
                cursor.execute(log_sql[1], (self.recorder.change_set.id, json.dumps(ids)))
        self.recorder.count += len(ids)

    def update(self, sheet: SheetPlan, rows: list[StagedRow]) -> None:
        model = sheet.model
        self.touched.add(model)
        spec = sheet.spec
        fields = [model._meta.fields[f.name] for f in spec.fields]
        assignments = ", ".join(f'"{f.column_name}" = {self.db.param}' for f in fields)
        sql = (f'UPDATE "{model._meta.table_name}" SET {assignments}, "version" = "version" + 1, '
               f'"updated_at" = {self.db.param} WHERE "id" = {self.db.param} AND "version" = {self.db.param}')
        table, label = model._meta.table_name, self._label_function(sheet)
        for start in range(0, len(rows), WRITE_CHUNK):
            chunk = rows[start:start + WRITE_CHUNK]
            params, entries = [], []
            for staged in chunk:
                new_values = {**{f.name: staged.old.get(f.name) for f in spec.fields}, **staged.changes}
                params.append(tuple(self._param(new_values[f.name]) for f in fields)
                              + (self._param(self.now), staged.record_id, staged.old["version"]))
                old = {name: _plain(value) for name, value in staged.old.items()}
                new = {**old, **{name: _plain(value) for name, value in staged.changes.items()},
                       "version": staged.old["version"] + 1, "updated_at": self.now.isoformat()}
                entries.append({"table_name": table, "record_id": staged.record_id, "action": "update",
                                "record_label": label(staged), "old": self.encode(old), "new": self.encode(new)})
            if self.sqlite:
                changed = self._executemany(sql, params)
            else:  # psycopg2 reports the rowcount of the last statement only
                changed = sum(self._executemany(sql, [one]) for one in params)
            if changed != len(params):
                raise _DatabaseMoved(f"a {spec.singular} in sheet '{sheet.name}' was changed by someone else "
                                     "while importing")
            self.recorder.log_many(entries)
            self.advance(len(chunk), f"Updating {sheet.title.lower()}…")

    def delete(self, sheet: SheetPlan) -> None:
        model = sheet.model
        self.touched.add(model)
        sql = f'DELETE FROM "{model._meta.table_name}" WHERE "id" = {self.db.param} AND "version" = {self.db.param}'
        label = sheet.spec.link(sheet.link).label if sheet.link else sheet.spec.singular
        for row in sheet.deletions:
            if self._executemany(sql, [(row["id"], row["version"])]) != 1:
                raise _DatabaseMoved(f"a row of '{sheet.name}' was changed by someone else while importing")
        self.recorder.log_many([
            {"table_name": model._meta.table_name, "record_id": row["id"], "action": "delete", "record_label": label,
             "old": self.encode({name: _plain(value) for name, value in row.items()}), "new": None}
            for row in sheet.deletions
        ])
        self.advance(len(sheet.deletions), f"Removing {sheet.title.lower()}…")

    def _label_function(self, sheet: SheetPlan) -> Callable[[StagedRow], str]:
        if sheet.link:
            text = sheet.spec.link(sheet.link).label
            return lambda staged: text
        label = self.names.labeller(sheet.spec)
        return lambda staged: staged.label or label(staged.values)


def _sqlite_has_json(db: peewee.Database) -> bool:
    try:
        db.execute_sql("SELECT json_object('a', 1)")
    except peewee.OperationalError:  # an SQLite built without JSON functions (before 3.38, optional)
        return False
    return True


def _snapshot_sql(model: type[peewee.Model], compact: bool) -> str:
    """json_object(...) of a row, as services.snapshot reads and json.dumps writes it (dates ISO, datetimes
    with a T, booleans true/false); `compact`: only the id and version (see INSERT_SNAPSHOT)."""
    if compact:
        return "json_object('id', t.id, 'version', t.version)"
    parts = []
    for spec in model._meta.sorted_fields:
        column = f't."{spec.column_name}"'
        if spec.field_type == "DATETIME":
            column = f"replace({column}, ' ', 'T')"
        elif spec.field_type == "BOOL":
            column = f"CASE WHEN {column} IS NULL THEN NULL WHEN {column} THEN json('true') ELSE json('false') END"
        parts.append(f"'{spec.name}', {column}")
    return f"json_object({', '.join(parts)})"


def _label_sql(sheet: SheetPlan) -> tuple[str, str]:
    """services.record_label of a row, in SQL: its name, else its natural key read out with the names of the
    records it refers to (joined, not looked up row by row). Returns (expression, joins)."""
    spec = sheet.spec
    if sheet.link:
        return _sql_text(spec.link(sheet.link).label), ""
    model = spec.model
    pieces, joins = [], []
    for name in spec.natural_key:
        spec_field = spec.field(name)
        column = f't."{model._meta.fields[name].column_name}"'
        if spec_field.kind == "ref":
            target = record_type(spec_field.ref)
            alias = f"r{len(joins) + 1}"
            joins.append(f'LEFT JOIN "{target.model._meta.table_name}" AS {alias} ON {alias}.id = {column}')
            shown = f"COALESCE(CAST({alias}.\"{target.name_field}\" AS TEXT), '#' || {column})"
        else:
            shown = f"CAST({column} AS TEXT)"
        stored = model._meta.fields[name]
        if stored.null or stored.field_type == "TEXT":
            pieces.append(f"CASE WHEN {column} IS NULL OR {column} = '' THEN '' ELSE ' · ' || {shown} END")
        else:  # never empty: no test needed (this runs for every row of a large import)
            pieces.append(f"' · ' || {shown}")
    readout = f"substr({' || '.join(pieces)}, 4)"
    label = f"COALESCE(NULLIF({readout}, ''), {_sql_text(spec.singular + ' #')} || t.id)"
    if spec.name_field != "id":
        name = f't."{model._meta.fields[spec.name_field].column_name}"'
        label = f"CASE WHEN {name} IS NOT NULL AND {name} != '' THEN CAST({name} AS TEXT) ELSE {label} END"
    return label, " ".join(joins)


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _inserted_log_sql(sheet: SheetPlan) -> tuple[str, str]:
    """The statements logging inserted rows: for a range of ids (?, ?), and for a JSON list of ids."""
    model = sheet.model
    table = model._meta.table_name
    entry = schema.ChangeLogEntry._meta.table_name
    label, joins = _label_sql(sheet)
    head = (f'INSERT INTO "{entry}" (change_set_id, table_name, record_id, action, record_label, old_values, '
            f"new_values) SELECT ?, {_sql_text(table)}, t.id, 'insert', substr({label}, 1, 200), NULL, "
            f'{_snapshot_sql(model, sheet.link is None)} FROM "{table}" AS t {joins} WHERE ')
    return (head + "t.id BETWEEN ? AND ? ORDER BY t.id",
            head + "t.id IN (SELECT value FROM json_each(?)) ORDER BY t.id")


class _DatabaseMoved(Exception):
    """The database changed between the check and the write; the transaction is rolled back."""


def apply_plan(plan: ImportPlan, progress: Progress = NO_PROGRESS) -> ImportResult:
    """Write the plan's accepted rows in one transaction and one change set (after a backup), or nothing at all:
    when rows were refused under --on-error abort, in a dry run, or when cancelled (progress raises Cancelled,
    the transaction rolls back)."""
    with _bulk_allocation():
        return _apply_plan(plan, progress)


def _apply_plan(plan: ImportPlan, progress: Progress) -> ImportResult:
    result = ImportResult(plan.path, plan.format, dry_run=plan.options.dry_run, notes=list(plan.notes))
    result.errors = plan.errors
    counts = plan.counts()
    result.rejected, result.unchanged = counts.get("error", 0), counts.get("unchanged", 0)
    inserts, updates = counts.get("insert", 0), counts.get("update", 0)
    if plan.problems or (plan.options.on_error == "abort" and result.rejected):
        return result
    result.inserted, result.updated, result.deleted = inserts, updates, plan.deleted
    if plan.options.dry_run:
        return result
    mappings = [(sheet.header_cells, sheet.mapping) for sheet in plan.sheets if sheet.mapping is not None]
    if inserts + updates + plan.deleted == 0:
        for headers, mapping in mappings:
            save_mapping(headers, mapping)
        return result
    result.backup = backup_database(dialect.current(), "before-import")
    summary = f"Import {plan.path.name}: {inserts:,} new, {updates:,} changed" + (
        f", {plan.deleted:,} link rows removed" if plan.deleted else "")
    try:
        with recording("import", summary) as recorder:
            writer = _Writer(recorder, progress, inserts + updates + plan.deleted)
            for sheet in plan.sheets:
                if sheet.deletions:
                    writer.delete(sheet)
            for sheet in plan.sheets:
                inserted = [row for row in sheet.rows if row.action == "insert"]
                if inserted:
                    writer.insert(sheet, inserted)
                updated = [row for row in sheet.rows if row.action == "update"]
                if updated:
                    writer.update(sheet, updated)
            dialect.sync_id_sequences(*writer.touched)
            for headers, mapping in mappings:
                save_mapping(headers, mapping)
            result.change_set_id = recorder.change_set.id
    except (_DatabaseMoved, peewee.IntegrityError) as exc:
        reason = str(exc) if isinstance(exc, _DatabaseMoved) else dialect.first_line(exc)
        return _failed(result, f"Nothing was written: the database changed since the rows were checked ({reason}); "
                               "import again")
    except WriteFailed as exc:
        return _failed(result, str(exc))
    result.written = True
    return result


def _failed(result: ImportResult, reason: str) -> ImportResult:
    result.failure = RowError(result.path.name, 0, "", None, reason)
    result.errors = [*result.errors, result.failure]
    result.inserted = result.updated = result.deleted = 0
    return result


def import_file(path: str | Path, options: ImportOptions | None = None,
                progress: Progress = NO_PROGRESS) -> tuple[ImportPlan, ImportResult]:
    """Stage and apply in one call (the command line); the database must be open."""
    options = options or ImportOptions()
    with ImportSource(path) as source:
        plan = stage_import(source, options, progress)
    return plan, apply_plan(plan, progress)
