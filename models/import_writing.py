"""Writing an import plan: a backup, then all accepted rows in one transaction and one change set, with
executemany in chunks; new records are logged as ranges of ids, new link rows by SQLite from the rows themselves.
Cancelling (the progress raises Cancelled) rolls the whole transaction back."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import peewee

from models import dialect, schema
from models.db import backup_database
from models.excel_read import bulk_allocation
from models.import_plan import ImportPlan, ImportResult, RowError, SheetPlan, StagedRow, save_mapping
from models.labels import NameBook
from models.progress import NO_PROGRESS, Progress
from models.records import record_type
from models.services import ChangeRecorder, WriteFailed, logged_value, recording

WRITE_CHUNK = 5_000


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


class _Writer:
    """Writes the accepted rows of a plan inside the import's transaction, with executemany in chunks.

    Change-log entries: new records are logged as ranges of consecutive ids (ChangeLogEntry.last_record_id),
    one entry per run: undo needs only their ids (they are all at version 1), and their values are the rows
    themselves (a later edit logs old → new in full, a delete the whole row). An entry per record, even without
    its values, cost a fifth of a 100,000-row import. Link rows are logged in full (the change feed reads their
    owner from them), and so are updates (old and new) and removals (the old row).
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
        table, encode = model._meta.table_name, self.encode
        link_label = sheet.spec.link(sheet.link).label if sheet.link else ""
        now_text, now_param = self.now.isoformat(), self._param(self.now)
        ranged = sheet.link is None
        log_sql = _inserted_links_log_sql(sheet) if not ranged and self.sqlite and _sqlite_has_json(self.db) else None
        new_ids: list[int] = []  # of records, logged as ranges once all are in
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
                if not ranged and log_sql is None:
                    snapshot = dict(zip(names, (record_id, now_text, now_text, 1, *values), strict=True))
                    entries.append({"table_name": table, "record_id": record_id, "action": "insert",
                                    "record_label": link_label, "old": None, "new": encode(snapshot)})
            self._executemany(sql, params)
            if ranged:
                new_ids += [row[0] for row in params]
            elif log_sql is None:
                self.recorder.log_many(entries)
            else:
                self._log_inserted(log_sql, [row[0] for row in params])
            self.advance(len(chunk), f"Writing {sheet.title.lower()}…")
        if ranged:
            self.recorder.log_many(_id_ranges(sheet, new_ids))

    def _log_inserted(self, log_sql: tuple[str, str], ids: list[int]) -> None:
        """The change-log entries of link rows just inserted, written by SQLite from the rows themselves,
        without 100,000 rounds of JSON in Python."""
        contiguous = ids[-1] - ids[0] + 1 == len(ids) and ids == sorted(ids)  # fresh ids: a range
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
                old = {name: logged_value(value) for name, value in staged.old.items()}
                new = {**old, **{name: logged_value(value) for name, value in staged.changes.items()},
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
             "old": self.encode({name: logged_value(value) for name, value in row.items()}), "new": None}
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


def _id_ranges(sheet: SheetPlan, ids: list[int]) -> list[dict]:
    """The change-log entries of new records: one per run of consecutive ids."""
    table, label = sheet.model._meta.table_name, sheet.spec.label
    ids = sorted(ids)
    if not ids:
        return []
    if ids[-1] - ids[0] + 1 == len(ids):  # the usual case: fresh ids, one run
        runs = [(ids[0], ids[-1])]
    else:
        breaks = [index for index in range(1, len(ids)) if ids[index] != ids[index - 1] + 1]
        runs = [(ids[start], ids[end - 1]) for start, end in zip([0, *breaks], [*breaks, len(ids)], strict=True)]
    return [{"table_name": table, "record_id": low, "last_record_id": high, "action": "insert",
             "record_label": f"{label} #{low}" + (f"–#{high}" if high > low else ""), "old": None, "new": None}
            for low, high in runs]


def _snapshot_sql(model: type[peewee.Model]) -> str:
    """json_object(...) of a row, as services.snapshot reads and json.dumps writes it (dates ISO, datetimes
    with a T, booleans true/false)."""
    parts = []
    for spec in model._meta.sorted_fields:
        column = f't."{spec.column_name}"'
        if spec.field_type == "DATETIME":
            column = f"replace({column}, ' ', 'T')"
        elif spec.field_type == "BOOL":
            column = f"CASE WHEN {column} IS NULL THEN NULL WHEN {column} THEN json('true') ELSE json('false') END"
        parts.append(f"'{spec.name}', {column}")
    return f"json_object({', '.join(parts)})"


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _inserted_links_log_sql(sheet: SheetPlan) -> tuple[str, str]:
    """The statements logging inserted link rows in full: for a range of ids (?, ?), and for a JSON list of ids."""
    model = sheet.model
    table = model._meta.table_name
    entry = schema.ChangeLogEntry._meta.table_name
    label = _sql_text(sheet.spec.link(sheet.link).label)
    head = (f'INSERT INTO "{entry}" (change_set_id, table_name, record_id, action, record_label, old_values, '
            f"new_values) SELECT ?, {_sql_text(table)}, t.id, 'insert', {label}, NULL, {_snapshot_sql(model)} "
            f'FROM "{table}" AS t WHERE ')
    return (head + "t.id BETWEEN ? AND ? ORDER BY t.id",
            head + "t.id IN (SELECT value FROM json_each(?)) ORDER BY t.id")


class _NewIds:
    """The ids of a data workbook's new rows, settled inside the write transaction. A workbook id is kept when
    it is still free (so an export imported into an empty database keeps every id); the rows the planner
    numbered itself (no id in the workbook, or one in use), and kept ids someone took since planning, get fresh
    ids from dialect.next_ids: on PostgreSQL from the sequence, so that a colleague saving meanwhile never gets
    the same one. References to a renumbered row (a ref field, a link row's owner) follow it."""

    def __init__(self, db: peewee.Database):
        self.db = db
        self.moved: dict[type[peewee.Model], dict[int, int]] = {}

    def settle(self, sheet: SheetPlan, rows: list[StagedRow]) -> None:
        model = sheet.model
        numbered = [row for row in rows if row.record_id is not None]
        kept = [row.record_id for row in numbered if not row.provisional]
        taken: set[int] = set()
        param = self.db.param
        for start in range(0, len(kept), 500):
            chunk = kept[start:start + 500]
            taken.update(row[0] for row in dialect.fetch_all(
                f'SELECT id FROM "{model._meta.table_name}" WHERE id IN ({", ".join([param] * len(chunk))})', chunk))
        keep = set(kept) - taken
        renumber = [row for row in numbered if row.provisional or row.record_id in taken]
        moved = self.moved.setdefault(model, {})
        for row, new_id in zip(renumber, self._fresh(model, len(renumber), keep), strict=True):
            if row.record_id != new_id:
                moved[row.record_id] = new_id
            row.record_id, row.provisional = new_id, False

    def _fresh(self, model: type[peewee.Model], count: int, keep: set[int]) -> list[int]:
        if count == 0:
            return []
        if dialect.is_postgres(self.db):
            ids: list[int] = []
            while len(ids) < count:  # a sequence value equal to a kept workbook id is skipped
                ids += [i for i in dialect.next_ids(model, count - len(ids)) if i not in keep]
            return ids
        # --- SQLite: after MAX(id), and after the kept ids, which are not inserted yet.
        ids = dialect.next_ids(model, count)
        floor = max(keep, default=0)
        return [i + floor + 1 - ids[0] for i in ids] if ids[0] <= floor else ids

    def follow(self, sheet: SheetPlan, rows: list[StagedRow]) -> None:
        """Point the rows' references at the renumbered rows."""
        if not any(self.moved.values()):
            return
        spec = sheet.spec
        targets: list[tuple[str, type[peewee.Model]]] = []
        fields = spec.link(sheet.link).fields if sheet.link else spec.fields
        targets += [(f.name, record_type(f.ref).model) for f in fields if f.kind == "ref"]
        generic_owner = False
        if sheet.link:
            owner_field = spec.link(sheet.link).owner_field
            if owner_field:
                targets.append((owner_field, spec.model))
            else:
                generic_owner = True
        targets = [(name, self.moved[model]) for name, model in targets if self.moved.get(model)]
        owner_moved = self.moved.get(spec.model) if generic_owner else None
        for row in rows:
            for values in (row.values, row.changes):
                if not values:
                    continue
                for name, moved in targets:
                    if values.get(name) in moved:
                        values[name] = moved[values[name]]
                if owner_moved and values.get("record_type") == spec.key and values.get("record_id") in owner_moved:
                    values["record_id"] = owner_moved[values["record_id"]]


class _DatabaseMoved(Exception):
    """The database changed between the check and the write; the transaction is rolled back."""


def apply_plan(plan: ImportPlan, progress: Progress = NO_PROGRESS) -> ImportResult:
    """Write the plan's accepted rows in one transaction and one change set (after a backup), or nothing at all:
    when rows were refused under --on-error abort, in a dry run, or when cancelled (progress raises Cancelled,
    the transaction rolls back)."""
    with bulk_allocation():
        return _apply_plan(plan, progress)


def _apply_plan(plan: ImportPlan, progress: Progress) -> ImportResult:
    result = ImportResult(plan.path, plan.format, dry_run=plan.options.dry_run, notes=list(plan.notes),
                          skipping_errors=plan.options.on_error == "skip")
    result.errors = plan.errors
    counts = plan.counts()
    result.rejected, result.unchanged = counts.get("error", 0), counts.get("unchanged", 0)
    inserts, updates = counts.get("insert", 0), counts.get("update", 0)
    if plan.refused:
        return result
    result.inserted, result.updated, result.deleted = inserts, updates, plan.deleted
    if plan.options.dry_run:
        return result
    mappings = [(sheet.header_cells, sheet.mapping) for sheet in plan.sheets if sheet.mapping is not None]
    if plan.writes == 0:
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
            new_ids = _NewIds(writer.db)
            for sheet in plan.sheets:
                inserted = [row for row in sheet.rows if row.action == "insert"]
                updated = [row for row in sheet.rows if row.action == "update"]
                new_ids.settle(sheet, inserted)  # records before the rows that refer to them: sheets go in that order
                new_ids.follow(sheet, inserted + updated)
                if inserted:
                    writer.insert(sheet, inserted)
                    # On PostgreSQL the sequence passes the kept ids at once, not at commit: a colleague's save
                    # meanwhile draws ids after them.
                    dialect.sync_id_sequences(sheet.model)
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
