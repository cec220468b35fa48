"""Staging a PaxDesk data workbook: record sheets in the order their references need, then link sheets; ids
kept where free, references resolved through the workbook's ids (a rejected row takes the rows that refer to it
along), rows matched to stored records by natural key (or by id, for a workbook from this very database)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from models import schema
from models.excel_read import SheetData, find_header_row, header_cells, is_blank, normalise_header
from models.import_matching import Existing, actor_name, cell_to_raw, natural_key
from models.import_plan import ImportRefused, RowError, SheetPlan, StagedRow, as_text, blank_row, metadata, plain_value
from models.import_staging import Staging, validate_into
from models.records import RECORD_TYPES, FieldSpec, LinkSpec, RecordType, record_type
from models.validation import fold, validate_link_row
from models.workbook_format import (
    DATABASE_ITEM,
    FORMAT_VERSION,
    FORMAT_VERSION_ITEM,
    ID_COLUMN,
    METADATA_SHEET,
    SheetLayout,
    link_layout,
    record_layout,
    record_order,
)

if TYPE_CHECKING:
    from models.importing import ImportSource


class _Ids:
    """Workbook ids → database ids per record type, and the workbook ids whose rows were rejected."""

    def __init__(self):
        self.mapped: dict[str, dict[int, int]] = {}
        self.rejected: dict[str, dict[int, int]] = {}  # workbook id → row
        self.named: dict[str, dict[str, int]] = {}  # folded name of an accepted row → database id

    def target(self, key: str, workbook_id: int) -> int | None:
        return self.mapped.get(key, {}).get(workbook_id)


def stage_paxdesk_workbook(source: ImportSource, stage: Staging) -> None:
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


def _layout_columns(sheet: SheetData, layout: SheetLayout, stage: Staging) -> tuple[int, dict[str, int]] | None:
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
                          stage: Staging) -> tuple[int | None, str | None, bool]:
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
    found = ids.named.get(target.key, {}).get(fold(as_text(name_cell)))
    if found is not None:
        return found, None, True
    found, why = stage.resolver.record(target.key, name_cell)
    return found, why, True


class _Columns:
    """Where a PaxDesk sheet's columns stand, and the reading of one row's fields by them."""

    def __init__(self, positions: dict[str, int], headers: list[str], fields: tuple[FieldSpec, ...]):
        self.positions, self.headers, self.fields = positions, headers, fields
        self._found: dict[str, int | None] = {}  # asked for every cell of every row: normalised once per header

    def at(self, header: str) -> int | None:
        found = self._found
        if header not in found:
            found[header] = self.positions.get(normalise_header(header))
        return found[header]

    def cell(self, cells: list, header: str) -> Any:
        position = self.at(header)
        return cells[position] if position is not None and position < len(cells) else None

    def column_of(self, field_name: str) -> tuple[str, int | None]:
        """(header, position) where a field's value stands: a reference by its id column."""
        spec_field = next((f for f in self.fields if f.name == field_name), None)
        header = f"{field_name}_id" if spec_field is not None and spec_field.kind == "ref" else field_name
        position = self.at(header)
        headers = self.headers
        return (headers[position] if position is not None and position < len(headers) else header, position)

    def read_fields(self, cells: list, sheet_name: str, row: int, ids: _Ids, same_database: bool,
                    stage: Staging) -> tuple[dict[str, Any], dict[str, RowError]]:
        """The row's raw field values (references resolved to database ids), and what could not be read."""
        raw: dict[str, Any] = {}
        failed: dict[str, RowError] = {}
        for spec_field in self.fields:
            if spec_field.kind == "ref":
                ref, why, by_name = _resolve_workbook_ref(
                    spec_field, self.cell(cells, f"{spec_field.name}_id"), self.cell(cells, spec_field.name), ids,
                    same_database, stage)
                raw[spec_field.name] = ref
                if why:
                    head = spec_field.name if by_name else f"{spec_field.name}_id"
                    failed[spec_field.name] = RowError(sheet_name, row, head, self.cell(cells, head), why,
                                                       self.at(head))
            else:
                raw[spec_field.name] = cell_to_raw(spec_field, self.cell(cells, spec_field.name))
        return raw, failed


def _stage_record_sheet(sheet: SheetData, layout: SheetLayout, ids: _Ids, same_database: bool,
                        stage: Staging) -> SheetPlan | None:
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
    columns = _Columns(positions, headers, spec.fields)
    column_of = columns.column_of
    key_column = column_of(spec.natural_key[0])

    first_row = sheet.row_number(index + 1)
    for offset, cells in enumerate(rows):
        stage.tick()
        if blank_row(cells):
            continue
        staged = StagedRow(first_row + offset, cells)
        plan_sheet.rows.append(staged)
        workbook_id = _whole(cells[id_at]) if id_at < len(cells) else None
        raw, failed = columns.read_fields(cells, sheet.name, staged.row, ids, same_database, stage)
        if id_at < len(cells) and not is_blank(cells[id_at]) and workbook_id is None:
            failed = {"id": RowError(sheet.name, staged.row, headers[id_at], cells[id_at],
                                     "The id must be a whole number (or empty for a new record)", id_at), **failed}
        validate_into(spec, raw, staged, failed, sheet.name, column_of, stage)
        if staged.errors:
            if workbook_id is not None:
                rejected[workbook_id] = staged.row
            continue
        clean = staged.values
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
                staged.provisional = True  # the write draws its real id (see import_writing)
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
                      owners_sheet: SheetPlan | None, stage: Staging) -> None:
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
    columns = _Columns(positions, headers, link.fields)
    at, cell, column_of = columns.at, columns.cell, columns.column_of

    groups: dict[int, list[StagedRow]] = {}
    first_row = sheet.row_number(index + 1)
    workbook_ids = {first_row + offset: _whole(cell(r, ID_COLUMN)) for offset, r in enumerate(rows)}  # by row
    for offset, cells in enumerate(rows):
        stage.tick()
        if blank_row(cells):
            continue
        staged = StagedRow(first_row + offset, cells)
        plan_sheet.rows.append(staged)
        owner_cell = cell(cells, f"{owner}_id")
        owner_id, why = _link_owner(spec, owner_cell, ids, same_database)
        raw, failed = columns.read_fields(cells, sheet.name, staged.row, ids, same_database, stage)
        if why:
            failed = {"owner": RowError(sheet.name, staged.row, f"{owner}_id", owner_cell, why,
                                        at(f"{owner}_id")), **failed}
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
    _settle_links(plan_sheet, spec, link, groups, owners_sheet, workbook_ids)


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
                  owners_sheet: SheetPlan | None, workbook_ids: dict[int, int | None]) -> None:
    """Per owner, the workbook's rows replace the stored ones: equal rows are unchanged, new ones inserted,
    stored rows the workbook no longer has are removed (only for owners whose record row is in the workbook)."""
    model = link.model
    owners = set(groups)
    if owners_sheet is not None:
        owners |= {row.record_id for row in owners_sheet.rows if row.action != "error" and row.record_id}
    stored_rows = _stored_links(spec, link, owners)
    taken_ids = {row_id for (row_id,) in model.select(model.id).tuples()} if groups else set()
    claimed: set[int] = set()
    next_id = max([0, *taken_ids, *(i for i in workbook_ids.values() if i is not None)]) + 1
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
                                                  f"{actor_name(holder[0])}"))
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
            workbook_id = workbook_ids[staged.row]
            if workbook_id is not None and workbook_id not in taken_ids and workbook_id not in claimed:
                staged.record_id = workbook_id
            else:
                while next_id in taken_ids or next_id in claimed:
                    next_id += 1
                staged.record_id = next_id
                next_id += 1
                staged.provisional = True
            claimed.add(staged.record_id)
        plan_sheet.deletions.extend(stored)


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
