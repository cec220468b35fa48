"""Exporting what a table shows: the rows and columns of a RecordQuery (search, filters, sort) as one sheet of
display values, with the view's filter written into a metadata sheet."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

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
from models.queries import RecordQuery

CHUNK = 2_000


def describe_query(query: RecordQuery) -> str:
    """The view's search, filters and sort in words, as the metadata sheet records them."""
    labels = {c.name: c.label for c in query.columns}
    parts = []
    if query.search.strip():
        parts.append(f"search '{query.search.strip()}'")
    for name, text in query.filters.items():
        if str(text).strip():
            parts.append(f"{labels.get(name, name)} contains '{str(text).strip()}'")
    direction = "descending" if query.descending else "ascending"
    parts.append(f"sorted by {labels.get(query.sort_column, query.sort_column)} ({direction})")
    return "; ".join(parts)


def _cell(column, value: Any) -> Any:
    """A display value as a typed cell: exact dates become Excel dates; everything else as shown."""
    if column.spec is not None and column.spec.kind == "date" and isinstance(value, str) and value:
        return dt.date.fromisoformat(value)
    return value


def export_view(query: RecordQuery, path: Path | str, progress: Progress = NO_PROGRESS) -> ExportResult:
    """Write the rows and columns of `query`, in its order, to `path` (atomically)."""
    ids = query.ids()
    if len(ids) >= EXCEL_MAX_ROWS:
        raise ExportRefused(f"The view holds {len(ids):,} rows; an Excel sheet holds at most {EXCEL_MAX_ROWS - 1:,}. "
                          "Filter it further, or export the data workbook.")
    sheet_name = query.spec.label[:31]
    result = ExportResult(Path(path), "view", {sheet_name: len(ids)})
    with atomic_target(Path(path)) as temp:
        result.path = Path(path).expanduser().absolute()
        with xlsx_workbook(temp) as workbook:
            formats = XlsxFormats(workbook)
            ws = workbook.add_worksheet(sheet_name)
            sample = query.rows(ids[:200])
            widths = [fitting_width([c.label] + [sample[i].get(c.name) for i in ids[:200] if i in sample])
                      for c in query.columns]
            header_row(ws, [c.label for c in query.columns], formats, len(ids), widths)
            row_number = 1
            for start in range(0, len(ids), CHUNK):
                progress.report(start, len(ids), f"Writing {query.spec.label.lower()}…")
                chunk = ids[start:start + CHUNK]
                rows = query.rows(chunk)
                for record_id in chunk:
                    shown = rows.get(record_id)
                    if shown is None:  # deleted since the ids were read
                        continue
                    write_cells(ws, row_number, [_cell(c, shown.get(c.name)) for c in query.columns], formats,
                                sheet_name)
                    row_number += 1
            result.sheets[sheet_name] = row_number - 1
            metadata_sheet(workbook, formats, export_metadata(
                "view", describe_query(query),
                [("Record type", query.spec.label), ("Rows", row_number - 1),
                 ("Columns", ", ".join(c.label for c in query.columns))]))
    progress.report(len(ids), len(ids), "Done")
    return result
