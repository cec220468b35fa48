"""The PaxDesk data workbook's layout, shared by its exporter and its importer: sheet names, column headers,
the codebook and metadata sheets, and how each kind of value is written, all derived from models.records.

One sheet per record type (named by its label, e.g. "Mediation events"): `id`, then every field by name;
a reference is two columns, `<field>_id` (the id, authoritative on import) and `<field>` (the name, for people).
Rows edited with a record get their own sheet ("Mediation events – participants"): `id`, the owner's id and
name (`event_id`, `event`; `record_id`, `record` for citations), then the link's fields. Values: EDTF dates as
text, exact dates as Excel dates, codes as codes (labels are in the codebook), yes/no as Excel booleans.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from models.codes import code_list
from models.records import RECORD_TYPES, FieldSpec, LinkSpec, RecordType

FORMAT_NAME = "PaxDesk data workbook"
FORMAT_VERSION = 1
METADATA_SHEET = "Metadata"
METADATA_HEADERS = ("Item", "Value")
# Items of the metadata sheet that the importer reads (the exporter may add others: when, filters…).
FORMAT_ITEM = "Format"
FORMAT_VERSION_ITEM = "Format version"
DATABASE_ITEM = "Database"
CODEBOOK_SHEET = "Codebook"
CODEBOOK_HEADERS = ("Sheet", "Column", "Field", "Kind", "Required", "Allowed values", "Meaning")
# Hidden sheet: one column per code list (its name, then its codes), the source of the drop-down lists on code
# columns. It describes no records; an importer ignores it.
CODES_SHEET = "Codes"
ID_COLUMN = "id"
DATE_FORMAT = "yyyy-mm-dd"  # number format of exact-date cells
SHEET_NAME_LIMIT = 31  # Excel's limit on sheet names
LINK_SEPARATOR = " – "

KIND_WORDS = {
    "text": "text", "longtext": "text", "int": "whole number", "float": "number", "bool": "TRUE or FALSE",
    "edtf": "EDTF date as text (2024-05-10, 2013-02, 2017~)", "date": "Excel date", "code": "code",
    "ref": "id of a record in the sheet named in Allowed values",
}


@dataclass(frozen=True)
class Column:
    header: str
    role: str  # "id", "value", "ref_id", "ref_name", "owner_id", "owner_name"
    field: FieldSpec | None = None  # the field a value or reference column holds


@dataclass(frozen=True)
class SheetLayout:
    name: str
    record_type: RecordType
    link: LinkSpec | None
    columns: tuple[Column, ...]

    @property
    def headers(self) -> tuple[str, ...]:
        return tuple(column.header for column in self.columns)

    @property
    def owner_field(self) -> str:
        """The name of the owner columns of a link sheet: `event` → `event_id`, `event`."""
        assert self.link is not None
        return self.link.owner_field or "record"


def _field_columns(fields: tuple[FieldSpec, ...]) -> list[Column]:
    columns = []
    for spec in fields:
        if spec.kind == "ref":
            columns += [Column(f"{spec.name}_id", "ref_id", spec), Column(spec.name, "ref_name", spec)]
        else:
            columns.append(Column(spec.name, "value", spec))
    return columns


def sheet_name(spec: RecordType, link: LinkSpec | None = None) -> str:
    name = spec.label if link is None else f"{spec.label}{LINK_SEPARATOR}{link.name}"
    return name[:SHEET_NAME_LIMIT]


def record_layout(spec: RecordType) -> SheetLayout:
    return SheetLayout(sheet_name(spec), spec, None, (Column(ID_COLUMN, "id"), *_field_columns(spec.fields)))


def link_layout(spec: RecordType, link: LinkSpec) -> SheetLayout:
    owner = link.owner_field or "record"
    columns = (Column(ID_COLUMN, "id"), Column(f"{owner}_id", "owner_id"), Column(owner, "owner_name"),
               *_field_columns(link.fields))
    return SheetLayout(sheet_name(spec, link), spec, link, columns)


def record_order() -> tuple[str, ...]:
    """Record type keys such that every type comes after the types its fields refer to (import order)."""
    ordered: list[str] = []

    def visit(key: str, path: tuple[str, ...]) -> None:
        if key in ordered or key in path:
            return
        for spec in RECORD_TYPES[key].fields:
            if spec.kind == "ref":
                visit(spec.ref, (*path, key))
        ordered.append(key)

    for key in RECORD_TYPES:
        visit(key, ())
    return tuple(ordered)


def layouts() -> list[SheetLayout]:
    """Every record and link sheet of the data workbook, in the catalogue's order, each record sheet followed
    by its link sheets (the order people read; the importer follows record_order instead)."""
    result = []
    for spec in RECORD_TYPES.values():
        result.append(record_layout(spec))
        result += [link_layout(spec, link) for link in spec.links]
    return result


def excel_value(spec: FieldSpec, value: Any) -> Any:
    """What a cell holds for a stored value: None stays empty; EDTF as text; exact dates as dates (write them
    with DATE_FORMAT); codes as codes; booleans as booleans; numbers as numbers; references as their id."""
    if value is None or value == "":
        return None
    if spec.kind == "edtf":
        return str(value)
    if spec.kind == "date":
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    if spec.kind == "bool":
        return bool(value)
    if spec.kind in ("int", "ref"):
        return int(value)
    if spec.kind == "float":
        return float(value)
    return str(value)


def allowed_values(spec: FieldSpec) -> str:
    if spec.kind == "code":
        codes = code_list(spec.codes)
        return "; ".join(f"{code} = {codes.labels[code]}" for code in codes.codes)
    if spec.kind == "ref":
        return f"an id from the sheet '{sheet_name(RECORD_TYPES[spec.ref])}'"
    bounds = []
    if spec.minimum is not None:
        bounds.append(f"at least {spec.minimum:g}")
    if spec.maximum is not None:
        bounds.append(f"at most {spec.maximum:g}")
    return ", ".join(bounds)


def codebook_rows() -> list[tuple[str, str, str, str, str, str, str]]:
    """One row per column of every sheet: what it holds and which values it allows (CODEBOOK_HEADERS)."""
    rows = []
    for layout in layouts():
        owner = layout.record_type.singular if layout.link is None else layout.link.label.lower()
        for column in layout.columns:
            spec = column.field
            if column.role == "id":
                rows.append((layout.name, column.header, "ID", "whole number", "yes",
                             "", f"PaxDesk's id of the {owner} row; keep it to update the row on import"))
            elif column.role == "owner_id":
                rows.append((layout.name, column.header, layout.record_type.singular.capitalize(), "whole number",
                             "yes", f"an id from the sheet '{sheet_name(layout.record_type)}'",
                             f"The {layout.record_type.singular} the row belongs to"))
            elif column.role == "owner_name":
                rows.append((layout.name, column.header, f"{layout.record_type.singular.capitalize()} (name)",
                             "text", "no", "", "For reading only; the id column decides"))
            elif column.role == "ref_name":
                rows.append((layout.name, column.header, f"{spec.label} (name)", "text", "no", "",
                             "For reading only when the id is given; used to find the record when it is not"))
            else:
                rows.append((layout.name, column.header, spec.label, KIND_WORDS[spec.kind],
                             "yes" if spec.required else "no", allowed_values(spec), spec.help))
    return rows


def metadata_items() -> list[tuple[str, Any]]:
    """The metadata rows that mark a data workbook; the exporter adds them to its usual ones (when, which
    database as DATABASE_ITEM, filters), as models.excel_write.export_metadata writes them."""
    return [(FORMAT_ITEM, FORMAT_NAME), (FORMAT_VERSION_ITEM, FORMAT_VERSION)]
