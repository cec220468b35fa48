"""Importing spreadsheets: UN contribution files (both vintages), PaxDesk data workbooks and any sheet through a
column mapping. Every row is read, reconciled, validated and compared with the database before anything is
written (`stage_import` → ImportPlan, also the wizard's preview); then `apply_plan` writes all accepted rows in
one transaction, as one change set that `services.revert_change_set` undoes in one step.

This module is the entry point (the source workbook, format detection, staging, the preview); the work is done
by models.import_staging and models.import_paxdesk (rows → plan), models.import_matching (references, keys,
stored rows) and models.import_writing (plan → database), on the types of models.import_plan.

Large files stay fast: per-value verdicts are memoised (validate_record's memo), references are resolved once per
distinct text, existing rows are read in one query per record type, and rows and change-log entries are written
with executemany in chunks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from models.excel_read import (
    SheetData,
    WorkbookFile,
    WorkbookRefused,
    bulk_allocation,
    find_header_row,
    guess_header_row,
    header_cells,
    is_blank,
    normalise_header,
    open_workbook,
)
from models.import_paxdesk import stage_paxdesk_workbook
from models.import_plan import (
    ERROR_POLICIES,
    FORMATS,
    MODES,
    REPORT_ERROR_HEADER,
    ColumnMapping,
    ImportOptions,
    ImportPlan,
    ImportRefused,
    ImportResult,
    RowError,
    SheetInfo,
    SheetPlan,
    StagedRow,
    mapping_key,
    metadata,
    plain_value,
    save_mapping,
    saved_mapping,
)
from models.import_staging import UN_REQUIRED, Staging, stage_mapped_sheet, stage_un_sheet
from models.import_writing import apply_plan
from models.labels import NameBook
from models.progress import NO_PROGRESS, Progress
from models.records import RECORD_TYPES, FieldSpec
from models.workbook_format import FORMAT_ITEM, FORMAT_NAME, METADATA_SHEET, SheetLayout, record_layout

__all__ = [
    "ACTION_WORDS", "ERROR_POLICIES", "FORMATS", "MODES", "REPORT_ERROR_HEADER", "ColumnMapping", "ImportOptions",
    "ImportPlan", "ImportRefused", "ImportResult", "ImportSource", "PlanPreview", "RowError", "SheetInfo", "SheetPlan",
    "StagedRow", "WorkbookRefused", "apply_plan", "detect_format", "import_file", "mapping_key", "save_mapping",
    "saved_mapping", "stage_import",
]

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


def stage_import(source: ImportSource, options: ImportOptions, progress: Progress = NO_PROGRESS) -> ImportPlan:
    """Read, reconcile, validate and compare every row; write nothing. The database must be open."""
    with bulk_allocation():
        return _stage_import(source, options, progress)


def _stage_import(source: ImportSource, options: ImportOptions, progress: Progress) -> ImportPlan:
    options.check()
    if options.mapping is not None and not options.sheet:
        raise ImportRefused("Say which sheet the column mapping is for")
    kind = detect_format(source, options)
    plan = ImportPlan(source.path, kind, options)
    stage = Staging(plan, progress)
    if kind == "paxdesk":
        stage_paxdesk_workbook(source, stage)
    else:
        names = [options.sheet] if options.sheet else source.sheet_names
        for name in names:
            info = source.describe(name)
            if kind == "un" and info.kind == "un":
                stage_un_sheet(source.sheet(name), info, stage)
            elif kind == "mapped" and info.header_index is not None and (
                    options.mapping is not None or info.mapping is not None):
                stage_mapped_sheet(source.sheet(name), info, options.mapping or info.mapping, stage)
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

def import_file(path: str | Path, options: ImportOptions | None = None,
                progress: Progress = NO_PROGRESS) -> tuple[ImportPlan, ImportResult]:
    """Stage and apply in one call (the command line); the database must be open."""
    options = options or ImportOptions()
    with ImportSource(path) as source:
        plan = stage_import(source, options, progress)
    return plan, apply_plan(plan, progress)
