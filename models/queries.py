"""Read-side queries for table views and exports: filtered, sorted pages of display-ready rows.

Filtering and sorting run in SQL. A table view asks for the ordered ids once (cheap: one integer column)
and then for the display rows of the few ids on screen, so a million rows never sit in memory as objects.
"""

from __future__ import annotations

import datetime as dt
import sys
from array import array
from dataclasses import dataclass, field
from typing import Any

from peewee import JOIN, Expression, Model, fn

from models.codes import code_list
from models.dates import humanise
from models.dialect import is_sqlite
from models.records import FieldSpec, RecordType, record_type

TEXTUAL = ("text", "longtext", "edtf", "code")


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    spec: FieldSpec | None  # None for the id column


def columns(spec: RecordType) -> list[Column]:
    """The columns a table of this record type shows, in order (long texts left to the form)."""
    return [Column("id", "ID", None)] + [
        Column(f.name, f.label, f) for f in spec.fields if f.kind != "longtext"
    ]


@dataclass
class RecordQuery:
    """One view of one record type: search text, per-column filters, sort column."""

    key: str
    search: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    sort_column: str = "id"
    descending: bool = False

    def __post_init__(self) -> None:
        self.spec = record_type(self.key)
        self.model: type[Model] = self.spec.model
        self.columns = columns(self.spec)

    # --- conditions -------------------------------------------------------------------------------
    def _ref_ids_matching(self, spec: FieldSpec, text: str):
        target = record_type(spec.ref)
        name_column = getattr(target.model, target.name_field)
        return target.model.select(target.model.id).where(name_column.contains(text))

    def _column_matches(self, spec: FieldSpec, text: str) -> Expression | None:
        column = getattr(self.model, spec.name)
        if spec.kind == "ref":
            return column.in_(self._ref_ids_matching(spec, text))
        if spec.kind == "code":
            codes = code_list(spec.codes)
            wanted = [c for c in codes.codes if text.casefold() in (c + " " + codes.labels[c]).casefold()]
            return column.in_(wanted) if wanted else None
        if spec.kind in ("int", "float"):
            try:
                return column == float(text)
            except ValueError:
                return None
        if spec.kind == "bool":
            return column == (text.strip().casefold() in ("1", "yes", "true", "y"))
        if spec.kind == "date":
            return column.cast("TEXT").startswith(text.strip())
        return column.contains(text)

    def conditions(self) -> list[Expression]:
        result = []
        if self.search.strip():
            alternatives = [
                self._column_matches(c.spec, self.search.strip())
                for c in self.columns
                if c.spec is not None and c.spec.kind in (*TEXTUAL, "ref")
            ]
            alternatives = [a for a in alternatives if a is not None]
            combined = alternatives[0] if alternatives else None
            for alternative in alternatives[1:]:
                combined = combined | alternative
            result.append(combined if combined is not None else (self.model.id < 0))
        for name, text in self.filters.items():
            if not str(text).strip():
                continue
            column = next(c for c in self.columns if c.name == name)
            if column.spec is None:
                condition = self.model.id == int(text) if str(text).strip().isdigit() else self.model.id < 0
            else:
                condition = self._column_matches(column.spec, str(text).strip())
            result.append(condition if condition is not None else (self.model.id < 0))
        return result

    def _filtered(self, query):
        for condition in self.conditions():
            query = query.where(condition)
        return query

    # --- reads ------------------------------------------------------------------------------------
    def count(self) -> int:
        return self._filtered(self.model.select(fn.COUNT(self.model.id))).scalar() or 0

    def _ordered_ids_query(self):
        query = self.model.select(self.model.id)
        column = next((c for c in self.columns if c.name == self.sort_column), self.columns[0])
        if column.spec is not None and column.spec.kind == "ref":
            target = record_type(column.spec.ref)
            alias = target.model.alias()
            query = query.join(alias, JOIN.LEFT_OUTER, on=(getattr(self.model, column.name) == alias.id))
            order = getattr(alias, target.name_field)
        else:
            order = getattr(self.model, column.name)
        order = order.desc() if self.descending else order.asc()
        tie = self.model.id.desc() if self.descending else self.model.id.asc()
        return self._filtered(query).order_by(order, tie)

    def ids(self) -> list[int]:
        cursor = self.model._meta.database.execute(self._ordered_ids_query())
        return [row[0] for row in cursor]

    def id_array(self) -> array:
        """The ordered ids as 8-byte integers, for views of any size. On SQLite the engine assembles the whole
        list as one hex string, so a worker thread reading a million ids holds Python's lock for milliseconds
        rather than for the whole read, and the GUI thread keeps painting meanwhile."""
        if not is_sqlite():
            return array("q", self.ids())
        sql, params = self._ordered_ids_query().sql()
        cursor = self.model._meta.database.execute_sql(
            f"SELECT group_concat(printf('%016x', id), '') FROM ({sql})", params)
        text = cursor.fetchone()[0] or ""
        ids = array("q")
        ids.frombytes(bytes.fromhex(text))
        if sys.byteorder == "little":
            ids.byteswap()  # the hex digits are big-endian
        return ids

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        """A page of display rows in view order, for exports and quick first paints."""
        ids = [row[0] for row in self.model._meta.database.execute(
            self._ordered_ids_query().offset(offset).limit(limit))]
        rows = self.rows(ids)
        return [rows[i] for i in ids if i in rows]

    def rows(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Display-ready rows (refs by name, codes by label, dates humanised) for the given ids."""
        if not ids:
            return {}
        # Only the shown columns: timestamps and long texts would cost conversions nobody sees.
        shown = [getattr(self.model, c.name) for c in self.columns if c.spec is not None]
        raw = list(self.model.select(self.model.id, self.model.version, *shown).where(self.model.id.in_(ids)).dicts())
        names = self._ref_names(raw)
        return {row["id"]: self._display(row, names) for row in raw}

    def raw_rows(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        return {row["id"]: row for row in self.model.select().where(self.model.id.in_(ids)).dicts()}

    def _ref_names(self, raw: list[dict]) -> dict[str, dict[int, str]]:
        names: dict[str, dict[int, str]] = {}
        for column in self.columns:
            if column.spec is None or column.spec.kind != "ref":
                continue
            wanted = {row[column.name] for row in raw if row[column.name] is not None}
            target = record_type(column.spec.ref)
            name_column = getattr(target.model, target.name_field)
            names[column.name] = dict(
                target.model.select(target.model.id, name_column).where(target.model.id.in_(list(wanted))).tuples()
            ) if wanted else {}
        return names

    def _display(self, row: dict, names: dict[str, dict[int, str]]) -> dict[str, Any]:
        shown: dict[str, Any] = {"id": row["id"], "version": row["version"]}
        for column in self.columns:
            if column.spec is not None:
                shown[column.name] = display_value(column.spec, row[column.name], names.get(column.name, {}))
        return shown


def display_value(spec: FieldSpec, value: Any, ref_names: dict[int, str] | None = None) -> Any:
    """How a stored value is shown to people."""
    if value is None:
        return ""
    if spec.kind == "ref":
        return (ref_names or {}).get(value, f"#{value}")
    if spec.kind == "code":
        return code_list(spec.codes).label(value)
    if spec.kind == "edtf":
        return humanise(value)
    if spec.kind == "date":
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if spec.kind == "bool":
        return "Yes" if value else "No"
    return value


def choices(key: str, text: str = "", limit: int = 50) -> list[tuple[int, str]]:
    """(id, name) of records whose name contains `text`, for type-ahead combo boxes."""
    spec = record_type(key)
    name_column = getattr(spec.model, spec.name_field)
    query = spec.model.select(spec.model.id, name_column).order_by(name_column)
    if text:
        query = query.where(name_column.contains(text))
    return list(query.limit(limit).tuples())
