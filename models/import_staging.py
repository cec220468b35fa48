"""Staging an import: every row of a UN contribution sheet, a mapped sheet or a PaxDesk data workbook read,
reconciled, validated with the forms' rules and compared with the database, into an ImportPlan (data workbooks:
models.import_paxdesk, on the Staging here). Nothing is written here; models.import_writing writes a plan."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from models.dates import DateError, parse_exact_date
from models.excel_read import SheetData, header_cells, is_blank, normalise_header
from models.import_matching import (
    Existing,
    Resolver,
    cell_to_raw,
    compare,
    excel_serial_date,
    natural_key,
)
from models.import_plan import (
    REPORT_ERROR_HEADER,
    ColumnMapping,
    ImportPlan,
    ImportRefused,
    RowError,
    SheetInfo,
    SheetPlan,
    StagedRow,
    blank_row,
)
from models.labels import NameBook
from models.progress import Progress
from models.records import RECORD_TYPES, RecordType, record_type
from models.validation import validate_record

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


# --- Staging -----------------------------------------------------------------------------------------

class Staging:
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

# UN contribution files ------------------------------------------------------------------------------

def stage_un_sheet(sheet: SheetData, info: SheetInfo, stage: Staging) -> None:
    spec = RECORD_TYPES["contributions"]
    rows = sheet.rows
    header = rows[info.header_index]
    positions: dict[str, int] = {}
    for index, value in enumerate(header):
        role = UN_COLUMNS.get(normalise_header(value))
        if role is not None and role not in positions:
            positions[role] = index
    cells_of_header = header_cells(header)
    headers = {role: cells_of_header[index] if index < len(cells_of_header) else "" for role, index in
               positions.items()}
    plan_sheet = SheetPlan(sheet.name, "un", "contributions", None, cells_of_header,
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
        if cells.count("") == len(cells) or (not cells[country_at] and not cells[mission_at] and blank_row(cells)):
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

def stage_mapped_sheet(sheet: SheetData, info: SheetInfo, mapping: ColumnMapping, stage: Staging) -> None:
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
        if blank_row(cells):
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
        validate_into(spec, raw, staged, failed, sheet.name, lambda n: _mapped_column(n, fields, headers),
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


def validate_into(spec: RecordType, raw: dict, staged: StagedRow, failed: dict[str, RowError], sheet: str,
                   column_of: Callable[[str], tuple[str, int | None]], stage: Staging) -> None:
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
