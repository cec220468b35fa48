"""The data workbook: every record and link row, laid out as models.workbook_format defines, with a codebook,
a metadata sheet and drop-down lists on code columns, streamed to disk so 100,000s of rows stay quick."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from models.codes import code_lists
from models.excel_write import (
    EXCEL_MAX_ROWS,
    ExportRefused,
    ExportResult,
    XlsxFormats,
    atomic_target,
    export_metadata,
    fitting_width,
    header_row,
    metadata_sheet,
    write_cells,
    xlsx_workbook,
)
from models.progress import NO_PROGRESS, Progress
from models.records import FieldSpec, record_type
from models.workbook_format import (
    CODEBOOK_HEADERS,
    CODEBOOK_SHEET,
    CODES_SHEET,
    METADATA_SHEET,
    SheetLayout,
    codebook_rows,
    excel_value,
    layouts,
    metadata_items,
)

REPORT_EVERY = 5_000
# Drop-downs reach this many rows below the data, so rows an editor adds get them too.
VALIDATION_MARGIN = 1_000


# --- Names of referenced records -------------------------------------------------------------------

class Names:
    """id → name of records of each type (what a reference or owner column shows), read once per export;
    for a large type, only the ids a sheet needs."""

    def __init__(self) -> None:
        self._cache: dict[str, dict[int, str]] = {}
        self._complete: set[str] = set()

    def of(self, key: str, ids: set[int] | None = None) -> dict[int, str]:
        if key in self._complete:
            return self._cache[key]
        if ids is None:
            self._cache[key] = self._read(key, None)
            self._complete.add(key)
            return self._cache[key]
        known = self._cache.setdefault(key, {})
        missing = [i for i in ids if i not in known]
        for start in range(0, len(missing), 500):
            known.update(self._read(key, missing[start:start + 500]))
        return known

    def _read(self, key: str, ids: list[int] | None) -> dict[int, str]:
        spec = record_type(key)
        model = spec.model

        def select(*columns):
            query = model.select(*columns)
            return query.where(model.id.in_(ids)) if ids is not None else query

        names: dict[int, str] = {}
        if spec.name_field != "id":
            names = dict(select(model.id, getattr(model, spec.name_field)).tuples().iterator())
            if all(names.values()):
                return names
        # Records without a name are called by their natural key, references read out by name.
        key_fields = [spec.field(name) for name in spec.natural_key]
        rows = list(select(model.id, *[getattr(model, f.name) for f in key_fields]).tuples().iterator())
        refs = {f.name: self.of(f.ref, {row[1 + i] for row in rows if row[1 + i] is not None})
                for i, f in enumerate(key_fields) if f.kind == "ref"}
        for row in rows:
            if names.get(row[0]):
                continue
            parts = []
            for field, value in zip(key_fields, row[1:], strict=True):
                if field.kind == "ref" and value is not None:
                    value = refs[field.name].get(value, f"#{value}")
                if value not in (None, ""):
                    parts.append(value.isoformat() if hasattr(value, "isoformat") else str(value))
            names[row[0]] = " · ".join(parts) or f"{spec.singular} #{row[0]}"
        return names


# --- Rows of each sheet ----------------------------------------------------------------------------

def _query(layout: SheetLayout):
    """The rows of a sheet: (id, owner id or nothing, stored field values…), ordered by id."""
    if layout.link is None:
        model = layout.record_type.model
        fields = layout.record_type.fields
        return model.select(model.id, *[getattr(model, f.name) for f in fields]).order_by(model.id), fields
    link = layout.link
    model = link.model
    if link.owner_field is None:  # citations: (record_type, record_id) of any record
        owner = model.record_id
        query = model.select(model.id, owner, *[getattr(model, f.name) for f in link.fields]).where(
            model.record_type == layout.record_type.key)
    else:
        query = model.select(model.id, getattr(model, link.owner_field),
                             *[getattr(model, f.name) for f in link.fields])
    return query.order_by(model.id), link.fields


def sheet_rows(layout: SheetLayout, names: Names) -> Iterator[list[Any]]:
    """The cell values of each row of a sheet, as the format writes them."""
    query, fields = _query(layout)
    database = layout.record_type.model._meta.database
    is_link = layout.link is not None
    # Raw driver rows (no per-cell Peewee conversion): excel_value reads the stored forms of both engines.
    # The converter of each column is chosen once, as the loop below runs a million times on a large database.
    plain = ("text", "longtext", "code", "edtf", "int", "float")
    converters: list[tuple[FieldSpec, dict[int, str] | None, bool]] = []
    for field in fields:
        ref_names = names.of(field.ref) if field.kind == "ref" and _small(field.ref) else None
        converters.append((field, ref_names, field.kind in plain))
    lazy_refs = any(field.kind == "ref" and ref_names is None for field, ref_names, _ in converters)
    cursor = database.execute(query)
    while True:
        batch = cursor.fetchmany(2_000)
        if not batch:
            return
        owner_names = names.of(layout.record_type.key, {row[1] for row in batch}) if is_link else {}
        if lazy_refs:
            offset = 2 if is_link else 1
            wanted = [(index, field) for index, (field, ref_names, _) in enumerate(converters)
                      if field.kind == "ref" and ref_names is None]
            batch_refs = {index: names.of(field.ref, {row[offset + index] for row in batch
                                                      if row[offset + index] is not None})
                          for index, field in wanted}
        for row in batch:
            cells: list[Any] = [row[0]]
            values = row[1:]
            if is_link:
                cells += [values[0], owner_names.get(values[0], f"#{values[0]}")]
                values = values[1:]
            for index, ((field, ref_names, is_plain), value) in enumerate(zip(converters, values, strict=True)):
                if is_plain:
                    cells.append(value)
                elif field.kind == "ref":
                    if value is None:
                        cells += [None, None]
                    else:
                        lookup = ref_names if ref_names is not None else batch_refs[index]
                        cells += [value, lookup.get(value, f"#{value}")]
                elif value is None:
                    cells.append(None)
                else:
                    cells.append(excel_value(field, value))
            yield cells


SMALL_TYPE = 50_000


def _small(key: str) -> bool:
    """Whether all names of a record type may be read at once (actors, missions…: yes, usually)."""
    model = record_type(key).model
    return model.select().limit(SMALL_TYPE + 1).count() <= SMALL_TYPE


def _count(layout: SheetLayout) -> int:
    query, _ = _query(layout)
    return query.order_by().count()


def data_sheet_cells() -> list[tuple[str, list[str], list[list[Any]]]]:
    """Every record and link sheet as (name, headers, rows of cell values), read into memory: for tests and
    the benchmark's baseline, which writes the same cells."""
    names = Names()
    return [(layout.name, list(layout.headers), list(sheet_rows(layout, names))) for layout in layouts()]


# --- Writing ---------------------------------------------------------------------------------------

def export_data(path: Path | str, progress: Progress = NO_PROGRESS) -> ExportResult:
    """Write the data workbook to `path` (atomically): every record and link, codebook, metadata."""
    sheet_layouts = layouts()
    counts = {layout.name: _count(layout) for layout in sheet_layouts}
    too_big = [name for name, count in counts.items() if count >= EXCEL_MAX_ROWS]
    if too_big:
        raise ExportRefused(f"{too_big[0]} holds {counts[too_big[0]]:,} rows; an Excel sheet holds at most "
                            f"{EXCEL_MAX_ROWS - 1:,}")
    total = sum(counts.values())
    result = ExportResult(Path(path), "data")
    names = Names()
    with atomic_target(Path(path)) as temp:
        result.path = Path(path).expanduser().absolute()
        with xlsx_workbook(temp) as workbook:
            formats = XlsxFormats(workbook)
            code_ranges = _codes_sheet_ranges()
            done = 0
            progress.report(0, total, "Writing records…")
            for layout in sheet_layouts:
                done = _write_sheet(workbook, formats, layout, counts[layout.name], names, code_ranges, progress,
                                    done, total)
                result.sheets[layout.name] = counts[layout.name]
            _write_codebook(workbook, formats)
            metadata_sheet(workbook, formats, [*export_metadata("data", ""), *metadata_items(),
                                               ("Records and links", total)], METADATA_SHEET)
            _write_codes(workbook, formats)
            progress.report(total, total, "Saving the workbook…")
    return result


def _write_sheet(workbook, formats: XlsxFormats, layout: SheetLayout, count: int, names: Names,
                 code_ranges: dict[str, str], progress: Progress, done: int, total: int) -> int:
    ws = workbook.add_worksheet(layout.name)
    rows = sheet_rows(layout, names)
    sample: list[list[Any]] = []
    for row in rows:  # widths from the first rows; they are written right after
        sample.append(row)
        if len(sample) == 200:
            break
    widths = [fitting_width([header] + [row[i] for row in sample], maximum=50)
              for i, header in enumerate(layout.headers)]
    header_row(ws, list(layout.headers), formats, count, widths)
    last = min(count + VALIDATION_MARGIN, EXCEL_MAX_ROWS - 1)
    for index, column in enumerate(layout.columns):
        if column.role == "value" and column.field is not None and column.field.kind == "code":
            ws.data_validation(1, index, last, index, {
                "validate": "list", "source": code_ranges[column.field.codes], "ignore_blank": True,
                "error_title": column.field.label,
                "error_message": "Choose a code from the list (the Codebook sheet gives their meanings).",
                "input_title": column.field.label[:32],
                "input_message": "Pick from the list; see the Codebook sheet.",
            })
    sheet = layout.name
    number = 1
    for batch in (sample, rows):
        for cells in batch:
            write_cells(ws, number, cells, formats, sheet)
            number += 1
            if number % REPORT_EVERY == 0:
                progress.report(done + number, total, f"Writing {sheet}…")
    return done + count


def _codes_sheet_ranges() -> dict[str, str]:
    """Where each code list's codes stand on the hidden codes sheet: the source of the drop-downs."""
    from xlsxwriter.utility import xl_col_to_name

    ranges = {}
    for index, (name, codes) in enumerate(code_lists().items()):
        column = xl_col_to_name(index)
        ranges[name] = f"='{CODES_SHEET}'!${column}$2:${column}${len(codes.codes) + 1}"
    return ranges


def _write_codes(workbook, formats: XlsxFormats) -> None:
    ws = workbook.add_worksheet(CODES_SHEET)
    lists = list(code_lists().values())
    longest = max(len(c.codes) for c in lists)
    write_cells(ws, 0, [c.name for c in lists], formats, CODES_SHEET)
    for row in range(longest):
        write_cells(ws, row + 1, [c.codes[row] if row < len(c.codes) else None for c in lists], formats, CODES_SHEET)
    ws.hide()


def _write_codebook(workbook, formats: XlsxFormats) -> None:
    ws = workbook.add_worksheet(CODEBOOK_SHEET)
    rows = codebook_rows()
    header_row(ws, list(CODEBOOK_HEADERS), formats, len(rows), [30, 20, 26, 22, 9, 60, 60])
    for number, row in enumerate(rows, start=1):
        write_cells(ws, number, row, formats, CODEBOOK_SHEET)

