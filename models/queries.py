"""Read-side queries for table views and exports: filtered, sorted pages of display-ready rows.

Filtering and sorting run in SQL. A table view asks for the ordered ids once (cheap: one integer column)
and then for the display rows of the few ids on screen, so a million rows never sit in memory as objects.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
from array import array
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from peewee import JOIN, SQL, Expression, Model, fn

from models.codes import code_list
from models.dates import humanise
from models.dialect import fetch_all, is_sqlite
from models.records import FieldSpec, LinkSpec, RecordType, record_type
from models.validation import fold

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
    def _names_matching(self, target: RecordType, text: str) -> Expression:
        """Records of `target` whose name contains `text`, or one of whose aliases does (an actor found as
        "Turkey" or "Қазақстан"): aliases are stored case- and accent-folded, so the text is folded too."""
        name_column = getattr(target.model, target.name_field)
        condition = name_column.contains(text)
        alias = _alias_link(target)
        if alias is not None:
            owner = getattr(alias.model, alias.owner_field)
            condition = condition | target.model.id.in_(
                alias.model.select(owner).where(alias.model.alias_key.contains(fold(text))))
        return condition

    def _ref_ids_matching(self, spec: FieldSpec, text: str):
        target = record_type(spec.ref)
        return target.model.select(target.model.id).where(self._names_matching(target, text))

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
        if spec.name == self.spec.name_field and _alias_link(self.spec) is not None:
            return self._names_matching(self.spec, text)
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

    # --- compiled statements ------------------------------------------------------------------------
    def _shape(self) -> tuple:
        return (type(self.model._meta.database.obj), self.key, self.search, tuple(sorted(self.filters.items())),
                self.sort_column, self.descending)

    def _compiled(self, what: str, build) -> tuple[str, list]:
        """SQL text and parameters of one statement of this view, compiled by Peewee once per view and kept:
        compiling costs more than SQLite takes to answer a page, and a view's first page is read again at every
        refresh, reopening or return to the view."""
        cache_key = (*self._shape(), what)
        with _COMPILED_LOCK:  # background id reads compile too
            compiled = _COMPILED.get(cache_key)
            if compiled is not None:
                _COMPILED.move_to_end(cache_key)
                return compiled
        sql, params = build().sql()
        with _COMPILED_LOCK:
            compiled = _COMPILED[cache_key] = (sql, list(params))
            while len(_COMPILED) > _COMPILED_MAX:
                _COMPILED.popitem(last=False)
        return compiled

    def _sort_join(self) -> tuple[Column, Any] | None:
        """The ref column sorted by, and how to join it. A required reference is joined as an inner one: it
        always points at a record, and SQLite then walks the referenced names in index order instead of sorting
        the whole table (a million contributions by country: a first page in under a millisecond instead of
        150 ms). Not when searching or filtering that very column: the walk would then visit most rows to find
        the few that match, and sorting those few is quicker."""
        column = next((c for c in self.columns if c.name == self.sort_column), self.columns[0])
        if column.spec is None or column.spec.kind != "ref":
            return None
        walk = column.spec.required and self._walkable(column)
        return column, (JOIN.INNER if walk else JOIN.LEFT_OUTER)

    def _walkable(self, column: Column) -> bool:
        return not self.search.strip() and not str(self.filters.get(column.name, "")).strip()

    def _select(self, display: bool, sort_join: Any = None) -> tuple[Any, Any]:
        """SELECT of the ids (or of the display fields, with one join per ref column for its name), joined to
        the record sorted by if any; returns (query, order expression)."""
        model = self.model
        sorted_by = self._sort_join()
        if sorted_by is not None and sort_join is not None:
            sorted_by = (sorted_by[0], sort_join)
        refs = [c for c in self.columns if c.spec is not None and c.spec.kind == "ref"]
        aliases = {c.name: record_type(c.spec.ref).model.alias(f"ref_{c.name}") for c in refs}
        names = {c.name: getattr(aliases[c.name], record_type(c.spec.ref).name_field) for c in refs}
        if display:
            fields = [model.id, model.version, *(getattr(model, c.name) for c in self.columns if c.spec is not None),
                      *names.values()]
            joined = [c.name for c in refs]
        else:
            fields = [model.id]
            joined = [sorted_by[0].name] if sorted_by is not None else []
        query = model.select(*fields)
        for name in joined:
            join_type = sorted_by[1] if sorted_by is not None and sorted_by[0].name == name else JOIN.LEFT_OUTER
            query = query.join_from(model, aliases[name], join_type, on=(getattr(model, name) == aliases[name].id))
        if sorted_by is not None:
            return query, names[sorted_by[0].name]
        column = next((c for c in self.columns if c.name == self.sort_column), self.columns[0])
        return query, getattr(model, column.name)

    def _ordered(self, query, order):
        order = order.desc() if self.descending else order.asc()
        tie = self.model.id.desc() if self.descending else self.model.id.asc()
        return self._filtered(query).order_by(order, tie)

    # --- reads ------------------------------------------------------------------------------------
    def count(self) -> int:
        return self._filtered(self.model.select(fn.COUNT(self.model.id))).scalar() or 0

    def _ordered_ids_query(self):
        return self._ordered(*self._select(display=False))

    def ids_statement(self) -> tuple[str, list]:
        """The SQL and parameters of the view's ordered ids."""
        return self._compiled("ids", self._ordered_ids_query)

    def ids(self) -> list[int]:
        sql, params = self.ids_statement()
        return [row[0] for row in fetch_all(sql, params)]

    def id_array(self) -> array:
        """The ordered ids as 8-byte integers, for views of any size. On SQLite the engine assembles the whole
        list as one hex string, so a worker thread reading a million ids holds Python's lock for milliseconds
        rather than for the whole read, and the GUI thread keeps painting meanwhile."""
        if not is_sqlite():
            return array("q", self.ids())
        sql, params = self.ids_statement()
        text = fetch_all(f"SELECT group_concat(printf('%016x', id), '') FROM ({sql})", params)[0][0] or ""
        ids = array("q")
        ids.frombytes(bytes.fromhex(text))
        if sys.byteorder == "little":
            ids.byteswap()  # the hex digits are big-endian
        return ids

    def display_page(self, offset: int, limit: int) -> list[tuple]:
        """A page of display tuples in view order, read with one statement: (id, version, then the value of
        every column after the id as `rows` shows it)."""
        sorted_by = self._sort_join()
        if sorted_by is not None and sorted_by[1] is JOIN.LEFT_OUTER and self._walkable(sorted_by[0]):
            return self._page_by_optional_ref(sorted_by[0], offset, limit)

        return self._convert(fetch_all(*self.page_statement(offset, limit)))

    def page_statement(self, offset: int, limit: int) -> tuple[str, list]:
        """The SQL and parameters of one page of display rows in view order (not used for sorts by an optional
        reference, see `_page_by_optional_ref`). The page's ids are chosen by a narrow inner statement (filter,
        sort, limit: no names joined), and only those rows get their names: joining names for every row before
        sorting would cost seconds on a million rows."""
        def build():
            ids_sql, ids_params = self.ids_statement()
            # LIMIT and OFFSET as literals: given as parameters, SQLite plans for an unknown number of rows and
            # walks the whole table in id order (a filter matching few of a million rows: 120 ms, not 0.4 ms).
            chosen = SQL(f"({ids_sql} LIMIT {int(limit)} OFFSET {int(offset)})", ids_params)
            query, order = self._select(display=True, sort_join=JOIN.LEFT_OUTER)
            tie = self.model.id.desc() if self.descending else self.model.id.asc()
            return query.where(self.model.id.in_(chosen)).order_by(
                order.desc() if self.descending else order.asc(), tie)

        return self._compiled(f"page {offset} {limit}", build)

    def _page_by_optional_ref(self, column: Column, offset: int, limit: int) -> list[tuple]:
        """A page sorted by an optional reference, read as two segments: the rows without one (ordered by id)
        and the rows with one (walked in name order through the indexes, no sort of the whole table). One
        statement over both would sort every row of the view first: 220 ms for a million contributions, a
        frozen window. The engine's own order is kept: SQLite puts empty values first, PostgreSQL last."""
        reference = getattr(self.model, column.name)
        nulls_first = self.descending != is_sqlite()

        def empty_part():
            query, _ = self._select(display=True, sort_join=JOIN.LEFT_OUTER)
            return self._ordered(query.where(reference.is_null()), self.model.id)

        def named_part():
            return self._ordered(*self._select(display=True, sort_join=JOIN.INNER))

        parts = [("empty", empty_part), ("named", named_part)]
        if not nulls_first:
            parts.reverse()
        rows: list[tuple] = []
        skip = offset
        for name, build in parts:
            want = limit - len(rows)
            if want <= 0:
                break
            sql, params = self._compiled(f"segment {name}", build)
            found = fetch_all(f"{sql} LIMIT {int(want)} OFFSET {int(skip)}", params)
            if not found and skip:  # the page starts past this segment: skip what it holds
                count_sql, count_params = self._compiled(
                    f"segment count {name}", lambda build=build: build().order_by().select(fn.COUNT(1)))
                skip = max(0, skip - fetch_all(count_sql, count_params)[0][0])
            else:
                skip = 0
            rows += found
        return self._convert(rows)

    def display_rows(self, ids: list[int]) -> list[tuple]:
        """Display tuples (as `display_page`) of the given ids, in no particular order."""
        if not ids:
            return []
        # The statement differs only by the number of ids: compiled once per record type and count.
        cache_key = (self._shape()[0], self.key, len(ids))
        sql = _ROWS_BY_IDS.get(cache_key)
        if sql is None:
            query, _ = RecordQuery(self.key)._select(display=True)  # unsorted: left joins only
            sql, params = query.where(self.model.id.in_(list(ids))).sql()
            assert params == list(ids), "the ids are the statement's only parameters"
            _ROWS_BY_IDS[cache_key] = sql
        return self._convert(fetch_all(sql, list(ids)))

    def _convert(self, raw: list[tuple]) -> list[tuple]:
        """Stored values → shown values, column by column (one comprehension a column costs less than a loop over
        every cell, at every first paint): refs by name, codes by label, EDTF in words, exact dates as ISO text
        (SQLite hands them over as text already: no parsing), booleans as Yes/No."""
        if not raw:
            return []
        shown = [c for c in self.columns if c.spec is not None]
        width = len(shown)
        ref_positions = [i for i, c in enumerate(shown) if c.spec.kind == "ref"]
        name_at = {position: 2 + width + n for n, position in enumerate(ref_positions)}
        converters = [_converter(c.spec, name_at.get(i)) for i, c in enumerate(shown)]
        columns = list(zip(*raw, strict=True))
        converted = [columns[0], columns[1]]
        for position, convert in enumerate(converters, start=2):
            column = columns[position]
            if convert is None:
                converted.append(["" if value is None else value for value in column])
            else:
                converted.append(["" if value is None else convert(value, row)
                                  for value, row in zip(column, raw, strict=True)])
        return list(zip(*converted, strict=True))

    def page(self, offset: int, limit: int) -> list[dict[str, Any]]:
        """A page of display rows in view order, for exports and quick first paints."""
        return [self._as_dict(values) for values in self.display_page(offset, limit)]

    def rows(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Display-ready rows (refs by name, codes by label, dates humanised) for the given ids."""
        return {values[0]: self._as_dict(values) for values in self.display_rows(ids)}

    def _as_dict(self, values: tuple) -> dict[str, Any]:
        names = ["id", "version"] + [c.name for c in self.columns if c.spec is not None]
        return dict(zip(names, values, strict=True))


_COMPILED: OrderedDict[tuple, tuple[str, list]] = OrderedDict()
_COMPILED_MAX = 256
_COMPILED_LOCK = threading.Lock()
_ROWS_BY_IDS: dict[tuple, str] = {}


def _alias_link(spec: RecordType) -> LinkSpec | None:
    """The aliases of a record type (actors have them), when its link model keeps folded keys."""
    for link in spec.links:
        if link.name == "aliases" and link.owner_field and hasattr(link.model, "alias_key"):
            return link
    return None


def _converter(spec: FieldSpec, name_at: int | None):
    """A function (stored value, raw row) → shown value for one column; None when shown as stored."""
    if spec.kind == "ref":
        return lambda value, row: row[name_at] if row[name_at] is not None else f"#{value}"
    if spec.kind == "code":
        labels = code_list(spec.codes).labels
        return lambda value, row: labels.get(value, value) if value else ""
    if spec.kind == "edtf":
        return lambda value, row: humanise(value)
    if spec.kind == "date":  # SQLite hands exact dates over as ISO text already
        return lambda value, row: value.isoformat() if isinstance(value, dt.date) else str(value)
    if spec.kind == "bool":
        return lambda value, row: "Yes" if value else "No"
    return None


def display_value(spec: FieldSpec, value: Any, ref_names: dict[int, str] | None = None) -> Any:
    """How a stored value is shown to people (as a table row shows it, see _converter)."""
    if value is None:
        return ""
    if spec.kind == "ref":
        return (ref_names or {}).get(value, f"#{value}")
    convert = _converter(spec, None)
    return value if convert is None else convert(value, None)


def choices(key: str, text: str = "", limit: int = 50) -> list[tuple[int, str]]:
    """(id, name) of records whose name contains `text`, for type-ahead combo boxes."""
    spec = record_type(key)
    name_column = getattr(spec.model, spec.name_field)
    query = spec.model.select(spec.model.id, name_column).order_by(name_column)
    if text:
        query = query.where(name_column.contains(text))
    return list(query.limit(limit).tuples())
