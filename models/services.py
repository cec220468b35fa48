"""Every write to PaxDesk data: create, update, delete and revert, each validated first, run in one
transaction and recorded in the change log. The GUI, the command line, import and seeding all call these."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import peewee
from peewee import IntegrityError, Model

from models import dialect, schema
from models.labels import NameBook
from models.progress import NO_PROGRESS, Progress
from models.records import RECORD_TYPES, LinkSpec, RecordType, record_type, record_type_for_model
from models.validation import Report, fold, validate_link_row, validate_record

BOOKKEEPING = ("id", "created_at", "updated_at", "version")


class RecordRefused(Exception):
    """A write was refused; `report` says why, field by field, in words a curator understands."""

    def __init__(self, report: Report):
        super().__init__(report.summary())
        self.report = report


class StaleRecord(RecordRefused):
    """Someone else changed or deleted the record since it was read."""


class StillReferenced(RecordRefused):
    """The record cannot be deleted while other records point to it."""


class WriteFailed(RecordRefused):
    """Not the data's fault: a busy database, a collision with another save, a lost server connection.
    `retryable` is True when nothing was committed, so saving again is safe."""

    def __init__(self, report: Report, retryable: bool):
        super().__init__(report)
        self.retryable = retryable


def current_user() -> str:
    configured = os.environ.get("PAXDESK_USER")
    if configured:
        return configured
    try:
        return getpass.getuser()
    except Exception:  # no login name available (some containers): still record something honest
        return "unknown"


def logged_value(value: Any) -> Any:
    """A value as the change log stores it: dates and datetimes as ISO text."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def snapshot(model: type[Model], record_id: int) -> dict[str, Any] | None:
    """A row's values as the change log stores them (dates and datetimes as ISO text); None if it is gone."""
    return snapshots(model, [record_id]).get(record_id)


def snapshots(model: type[Model], ids: list[int]) -> dict[int, dict[str, Any]]:
    """snapshot of many rows at once (at most a few hundred ids: one IN list). The rows are read as the driver
    gives them and only dates, datetimes and booleans go through Peewee's conversion: converting every value
    of 100,000 rows was the largest part of undoing an import."""
    fields = model._meta.sorted_fields
    names = [field.name for field in fields]
    converted = [(index, field.python_value) for index, field in enumerate(fields)
                 if field.field_type in ("DATE", "DATETIME", "BOOL")]
    found = {}
    for row in dialect.fetch_all(*model.select(*fields).where(_id_in(ids)).sql()):
        values = list(row)
        for index, python_value in converted:
            if values[index] is not None:
                values[index] = logged_value(python_value(values[index]))
        found[values[0]] = dict(zip(names, values, strict=True))
    return found


# --- The change log --------------------------------------------------------------------------------

class ChangeRecorder:
    """Collects the entries of one change set; created by `recording`."""

    def __init__(self, change_set: schema.ChangeSet):
        self.change_set = change_set
        self.count = 0

    def log(self, model: type[Model], record_id: int, action: str, label: str,
            old: dict | None, new: dict | None) -> None:
        schema.ChangeLogEntry.insert(
            change_set=self.change_set.id, table_name=model._meta.table_name, record_id=record_id,
            action=action, record_label=label[:200],
            old_values=json.dumps(old, ensure_ascii=False) if old is not None else None,
            new_values=json.dumps(new, ensure_ascii=False) if new is not None else None,
        ).execute()
        self.count += 1

    def log_many(self, rows: Iterable[dict]) -> None:
        """Bulk entries for imports and undo: dicts with table_name, record_id, action, record_label, old, new
        (and, for a range of inserted rows, last_record_id); old and new are dicts, or their JSON text when the
        caller encoded them itself. One executemany: 100,000 entries take well under a second, where Peewee's
        insert_many took several."""

        def encoded(values: Any) -> str | None:
            if values is None or isinstance(values, str):
                return values
            return json.dumps(values, ensure_ascii=False)

        prepared = [
            (self.change_set.id, row["table_name"], row["record_id"], row["action"], row["record_label"][:200],
             encoded(row["old"]), encoded(row["new"]), row.get("last_record_id"))
            for row in rows
        ]
        if not prepared:
            return
        entry = schema.ChangeLogEntry
        columns = [entry.change_set, entry.table_name, entry.record_id, entry.action, entry.record_label,
                   entry.old_values, entry.new_values, entry.last_record_id]
        db = schema.database.obj
        names = ", ".join(f'"{column.column_name}"' for column in columns)
        sql = f'INSERT INTO "{entry._meta.table_name}" ({names}) VALUES ({", ".join([db.param] * len(columns))})'
        with peewee.__exception_wrapper__:  # driver errors surface as Peewee's, as with any other query
            db.cursor().executemany(sql, prepared)
        self.count += len(prepared)


@contextmanager
def recording(kind: str, summary: str, recorder: ChangeRecorder | None = None) -> Iterator[ChangeRecorder]:
    """One transaction and one change set. Nested calls join the outer change set (an import is one entry)."""
    if recorder is not None:
        # A savepoint: a refused record (a database IntegrityError included) is undone alone and leaves the
        # outer transaction usable, on PostgreSQL (which otherwise aborts it) as on SQLite.
        count = recorder.count
        try:
            with dialect.write_transaction():
                yield recorder
        except BaseException:
            recorder.count = count
            raise
        return
    try:
        with dialect.write_transaction():
            change_set = schema.ChangeSet.create(user=current_user(), kind=kind, summary=summary[:300])
            recorder = ChangeRecorder(change_set)
            yield recorder
            if recorder.count == 0:  # nothing changed: leave no empty entry in the log (nor an undo step)
                change_set.delete_instance()
    except dialect.TransactionFailed as exc:
        raise WriteFailed(_report("", str(exc)), retryable=exc.retryable) from exc


# --- Labels and references -------------------------------------------------------------------------

def _ref_name(spec_key: str, record_id: int | None) -> str:
    if record_id is None:
        return ""
    target = record_type(spec_key)
    row = target.model.select().where(target.model.id == record_id).dicts().first()
    return record_label(target, row) if row else f"#{record_id}"


def record_label(spec: RecordType, values: dict[str, Any]) -> str:
    """What people call a record: its name, or its natural key read out (refs by name)."""
    if spec.name_field != "id" and values.get(spec.name_field):
        return str(values[spec.name_field])
    parts = []
    for name in spec.natural_key:
        value = values.get(name)
        field = spec.field(name)
        if field.kind == "ref":
            value = _ref_name(field.ref, value) if value is not None else ""
        if value not in (None, ""):
            parts.append(str(logged_value(value)))
    return " · ".join(parts) or f"{spec.singular} #{values.get('id')}"


def _owned_links(model: type[Model]) -> list[tuple[type[Model], str]]:
    """(link model, owner field) pairs whose rows belong to a record of `model` and go with it."""
    spec = record_type_for_model(model)
    if spec is None:
        return []
    return [(link.model, link.owner_field) for link in spec.links if link.owner_field]


def references_to(spec: RecordType, record_id: int) -> list[str]:
    """Descriptions of the records that still point to this one (owned link rows excluded)."""
    owned = set(_owned_links(spec.model))
    found: list[str] = []
    for model in schema.RECORD_TABLES:
        for field in model._meta.sorted_fields:
            if getattr(field, "rel_model", None) is not spec.model or (model, field.name) in owned:
                continue
            rows = model.select().where(field == record_id)
            count = rows.count()
            if not count:
                continue
            found.append(_describe_referrers(model, field.name, rows, count))
    return found


def _describe_referrers(model: type[Model], field_name: str, rows, count: int) -> str:
    referrer = record_type_for_model(model)
    if referrer is not None:
        names = [record_label(referrer, row) for row in rows.limit(3).dicts()]
        noun = referrer.label.lower() if count > 1 else referrer.singular
    else:  # a link row: name the record that owns it
        owner_spec, link = next(
            (s, link) for s in RECORD_TYPES.values() for link in s.links if link.model is model
        )
        if link.owner_field:
            names = [_ref_name(owner_spec.key, getattr(row, f"{link.owner_field}_id")) for row in rows.limit(3)]
            owners = owner_spec.label.lower() if count > 1 else owner_spec.singular
            noun = f"{owners} (as {link.label.lower()})"
        else:  # citations: each row names its owner's record type and id, and the owners may be of any type
            names = [f"{_ref_name(row.record_type, row.record_id)} ({RECORD_TYPES[row.record_type].singular})"
                     for row in rows.limit(3)]
            noun = link.label.lower() if count > 1 else link.label.lower().removesuffix("s")
    more = f" and {count - len(names)} more" if count > len(names) else ""
    return f"{count} {noun}: {', '.join(names)}{more}"


# --- Checks that need the database -----------------------------------------------------------------

def check_against_database(spec: RecordType, clean: dict[str, Any], record_id: int | None = None) -> Report:
    """Unknown references and natural-key duplicates, as a report."""
    report = Report()
    for field in spec.fields:
        if field.kind == "ref" and clean.get(field.name) is not None:
            target = record_type(field.ref).model
            if not target.select().where(target.id == clean[field.name]).exists():
                report.add(field.name, f"{field.label}: no {record_type(field.ref).singular} #{clean[field.name]}")
    if report.ok:
        duplicate = find_by_natural_key(spec, clean)
        if duplicate is not None and duplicate != record_id:
            report.add(spec.natural_key[0],
                       f"{spec.a_singular.capitalize()} '{record_label(spec, clean)}' already exists (#{duplicate})")
    return report


def find_by_natural_key(spec: RecordType, clean: dict[str, Any]) -> int | None:
    model = spec.model
    query = model.select(model.id)
    for name in spec.natural_key:
        column = getattr(model, name)
        value = clean.get(name)
        if spec.key == "contributions" and name == "mission_note" and clean.get("mission") is not None:
            continue  # a named mission's figure is keyed without the note, as the UN keys it
        if name in ("name", "title", "acronym"):
            query = query.where(dialect.equals_ignoring_case(column, value))
        else:
            query = query.where(column.is_null() if value is None else column == value)
    row = query.first()
    return row.id if row else None


# --- Create, update, delete ------------------------------------------------------------------------

@dialect.retry_unsaved
def save_record(key: str, values: dict[str, Any], *, record_id: int | None = None,
                expected_version: int | None = None, links: dict[str, list[dict]] | None = None,
                recorder: ChangeRecorder | None = None) -> int:
    """Create (record_id None) or update a record and, if given, replace its linked rows.
    Validates everything first; raises RecordRefused without writing anything when any check fails."""
    spec = record_type(key)
    clean, report = validate_record(spec, values)
    clean_links: dict[str, list[dict]] = {}
    for link_name, rows in (links or {}).items():
        link = spec.link(link_name)
        clean_links[link_name] = []
        for index, row in enumerate(rows, start=1):
            clean_row, row_report = validate_link_row(link, row)
            report.extend(row_report, prefix=f"{link_name}[{index}].")
            clean_links[link_name].append(clean_row)
    if not report.ok:
        raise RecordRefused(report)
    action = "Edit" if record_id is not None else "New"
    with recording("edit", f"{action} {spec.singular} '{record_label(spec, clean)}'", recorder) as rec:
        db_report = check_against_database(spec, clean, record_id)
        for link_name, rows in clean_links.items():
            db_report.extend(_check_link_rows(spec.link(link_name), rows), prefix=f"{link_name}.")
        if not db_report.ok:
            raise RecordRefused(db_report)
        if record_id is None:
            record_id = _insert(spec, clean, rec)
        else:
            _update(spec, record_id, clean, expected_version, rec)
        for link_name, rows in clean_links.items():
            _replace_links(spec, spec.link(link_name), record_id, rows, rec)
    return record_id


def create_record(key: str, values: dict[str, Any], **kwargs) -> int:
    return save_record(key, values, **kwargs)


def update_record(key: str, record_id: int, changes: dict[str, Any], *, expected_version: int | None = None,
                  **kwargs) -> int:
    """Change some fields of a record; the others keep their stored values."""
    spec = record_type(key)
    current = snapshot(spec.model, record_id)
    if current is None:
        raise StaleRecord(_report("id", f"The {spec.singular} #{record_id} no longer exists"))
    merged = {field.name: current.get(field.name) for field in spec.fields}
    merged.update(changes)
    return save_record(key, merged, record_id=record_id, expected_version=expected_version, **kwargs)


def _report(field_name: str, message: str) -> Report:
    report = Report()
    report.add(field_name, message)
    return report


def _check_link_rows(link: LinkSpec, rows: list[dict]) -> Report:
    report = Report()
    seen = set()
    for index, row in enumerate(rows, start=1):
        for field in link.fields:
            if field.kind == "ref" and row.get(field.name) is not None:
                target = record_type(field.ref).model
                if not target.select().where(target.id == row[field.name]).exists():
                    report.add(f"[{index}].{field.name}", f"{field.label}: no such record #{row[field.name]}")
        identity = tuple(sorted((k, str(v)) for k, v in row.items() if k not in ("notes", "quote")))
        if identity in seen:
            report.add(f"[{index}]", f"{link.label}: row {index} repeats an earlier row")
        seen.add(identity)
    return report


def _insert(spec: RecordType, clean: dict, rec: ChangeRecorder) -> int:
    try:
        record_id = spec.model.insert(**clean).execute()
    except IntegrityError as exc:
        raise RecordRefused(_report("", f"The database refused the {spec.singular}: {exc}")) from exc
    rec.log(spec.model, record_id, "insert", record_label(spec, clean), None, snapshot(spec.model, record_id))
    return record_id


def _update(spec: RecordType, record_id: int, clean: dict, expected_version: int | None,
            rec: ChangeRecorder) -> None:
    model = spec.model
    old = snapshot(model, record_id)
    if old is None:
        raise StaleRecord(_report("id", f"The {spec.singular} #{record_id} was deleted by someone else"))
    if expected_version is not None and old["version"] != expected_version:
        raise StaleRecord(_report("version", _stale_message(spec, record_id, old)))
    changed = {name: value for name, value in clean.items() if logged_value(value) != old.get(name)}
    if not changed:
        return
    query = model.update(**changed, version=model.version + 1, updated_at=schema.utc_now()).where(
        model.id == record_id, model.version == old["version"]
    )
    try:
        updated = query.execute()
    except IntegrityError as exc:
        raise RecordRefused(_report("", f"The database refused the change: {exc}")) from exc
    if updated == 0:  # another connection changed it between our read and our write
        raise StaleRecord(_report("version", _stale_message(spec, record_id, snapshot(model, record_id))))
    rec.log(model, record_id, "update", record_label(spec, {**old, **clean}), old, snapshot(model, record_id))


def last_change(model: type[Model], record_id: int) -> tuple[str, str] | None:
    """(user, when) of the latest change log entry of a row: its own entries, or a range of imported rows
    holding it."""
    entry, table = schema.ChangeLogEntry, model._meta.table_name
    own = (entry.select(entry.id).where(entry.table_name == table, entry.record_id == record_id)
           .order_by(entry.id.desc()).limit(1))
    # Few rows (an import's ranges): all of those holding the row are read, and the newest taken here.
    ranges = entry.select(entry.id).where(entry.table_name == table, entry.last_record_id.is_null(False),
                                          entry.record_id <= record_id, entry.last_record_id >= record_id)
    ids = [row[0] for query in (own, ranges) for row in query.tuples()]
    if not ids:
        return None
    found = (schema.ChangeSet.select(schema.ChangeSet.user, schema.ChangeSet.at).join(entry)
             .where(entry.id == max(ids)).dicts().first())
    return found["user"], logged_value(found["at"])


def _stale_message(spec: RecordType, record_id: int, current: dict | None) -> str:
    if current is None:
        return f"The {spec.singular} #{record_id} was deleted by someone else"
    who = last_change(spec.model, record_id)
    by = f" by {who[0]} at {who[1]}" if who else ""
    return (f"The {spec.singular} '{record_label(spec, current)}' was changed{by} since you opened it; "
            "reload it to see the new values")


def _replace_links(spec: RecordType, link: LinkSpec, record_id: int, rows: list[dict],
                   rec: ChangeRecorder) -> None:
    model = link.model
    owner = _owner_condition(spec, link, record_id)
    wanted = [{**owner, **row} for row in rows]
    if link.model is schema.ActorAlias:
        for row in wanted:
            row["alias_key"] = fold(row["alias"])
    field_names = [f.name for f in link.fields]
    existing = list(model.select().where(*[getattr(model, k) == v for k, v in owner.items()]).dicts())
    remaining = list(wanted)
    for row in existing:
        match = next((w for w in remaining
                      if all(logged_value(row[n]) == logged_value(w.get(n)) for n in field_names)), None)
        if match is not None:
            remaining.remove(match)
            continue
        model.delete().where(model.id == row["id"]).execute()
        rec.log(model, row["id"], "delete", link.label, {k: logged_value(v) for k, v in row.items()}, None)
    for row in remaining:
        try:
            new_id = model.insert(**row).execute()
        except IntegrityError as exc:
            raise RecordRefused(_report(link.name, f"{link.label}: the database refused a row: {exc}")) from exc
        rec.log(model, new_id, "insert", link.label, None, snapshot(model, new_id))


def _owner_condition(spec: RecordType, link: LinkSpec, record_id: int) -> dict[str, Any]:
    if link.owner_field is None:
        return {"record_type": spec.key, "record_id": record_id}
    return {link.owner_field: record_id}


def linked_rows(key: str, record_id: int, link_name: str) -> list[dict]:
    """The link rows of a record, as the field values a form or export shows."""
    spec = record_type(key)
    link = spec.link(link_name)
    model = link.model
    owner = _owner_condition(spec, link, record_id)
    query = model.select().where(*[getattr(model, k) == v for k, v in owner.items()]).order_by(model.id)
    return [{f.name: row[f.name] for f in link.fields} for row in query.dicts()]


@dialect.retry_unsaved
def delete_record(key: str, record_id: int, *, expected_version: int | None = None,
                  recorder: ChangeRecorder | None = None) -> None:
    """Delete a record with the rows that belong to it; refuse while other records still point to it."""
    spec = record_type(key)
    model = spec.model
    current = snapshot(model, record_id)
    if current is None:
        raise StaleRecord(_report("id", f"The {spec.singular} #{record_id} no longer exists"))
    label = record_label(spec, current)
    if expected_version is not None and current["version"] != expected_version:
        raise StaleRecord(_report("version", _stale_message(spec, record_id, current)))
    referrers = references_to(spec, record_id)
    if referrers:
        raise StillReferenced(_report(
            "id", f"Cannot delete {spec.singular} '{label}': still used by " + "; ".join(referrers)
        ))
    with recording("delete", f"Delete {spec.singular} '{label}'", recorder) as rec:
        for link in spec.links:
            _replace_links(spec, link, record_id, [], rec)
        deleted = model.delete().where(model.id == record_id, model.version == current["version"]).execute()
        if deleted == 0:
            raise StaleRecord(_report("version", _stale_message(spec, record_id, snapshot(model, record_id))))
        rec.log(model, record_id, "delete", label, current, None)


# --- Revert (undo and redo) ------------------------------------------------------------------------

def _models_by_table() -> dict[str, type[Model]]:
    return {model._meta.table_name: model for model in schema.RECORD_TABLES}


def _stored(model: type[Model], values: dict[str, Any]) -> dict[str, Any]:
    """JSON snapshot → values Peewee can write (dates back to date objects)."""
    result = {}
    for name, value in values.items():
        field = model._meta.fields[name]
        if value is not None and field.field_type == "DATE":
            value = dt.date.fromisoformat(value)
        elif value is not None and field.field_type == "DATETIME":
            value = dt.datetime.fromisoformat(value)
        result[name] = value
    return result


REVERT_CHUNK = 500  # ids per IN (…) list: well under SQLite's 999 parameters of old builds and PostgreSQL's limits


class _Entry:
    """One change-log entry being reverted (slots: 100,000 of them for an import)."""

    __slots__ = ("table_name", "record_id", "action", "label", "old", "new")

    def __init__(self, table_name: str, record_id: int, action: str, label: str, old: dict | None,
                 new: dict | None):
        self.table_name, self.record_id, self.action, self.label, self.old, self.new = \
            table_name, record_id, action, label, old, new

    @classmethod
    def read(cls, row: tuple) -> list[_Entry]:
        """A stored entry as the entries undo works through: a range of inserted rows gives one per row, newest
        first, at version 1 and without a label (undo names them from their values)."""
        table_name, record_id, action, label, old, new, last_record_id = row
        if last_record_id is None:
            return [cls(table_name, record_id, action, label, json.loads(old) if old else None,
                         json.loads(new) if new else None)]
        return [cls(table_name, one, "insert", "", None, {"id": one, "version": 1})
                for one in range(last_record_id, record_id - 1, -1)]


@dialect.retry_unsaved
def revert_change_set(change_set_id: int, progress: Progress | None = None) -> int:
    """Undo one change set (an edit, a delete, a whole import) as a new change set, and return its id.
    Refuses, writing nothing, when any row it touched has been changed since. In bulk: the versions are checked
    with one SELECT per chunk of ids, then each run of entries of one table and action (in reverse order, so
    link rows go before their owners on undo and after them on redo) is written with IN (…) deletes,
    multi-row inserts and one batch of log entries. `progress` hears how far it is, and may cancel (rollback)."""
    progress = progress or NO_PROGRESS
    original = schema.ChangeSet.get_by_id(change_set_id)
    entry_model = schema.ChangeLogEntry
    rows = (entry_model.select(entry_model.table_name, entry_model.record_id, entry_model.action,
                               entry_model.record_label, entry_model.old_values, entry_model.new_values,
                               entry_model.last_record_id)
            .where(entry_model.change_set == change_set_id).order_by(entry_model.id.desc()).tuples())
    entries = [entry for row in rows for entry in _Entry.read(row)]
    models = _models_by_table()
    summary = original.summary[6:] if original.kind == "undo" and original.summary.startswith("Undo: ") \
        else f"Undo: {original.summary}"

    def stale(entry: _Entry) -> StaleRecord:
        model = models[entry.table_name]
        label = entry.label or _label_of(model, snapshot(model, entry.record_id), entry.record_id)
        return StaleRecord(_report("", f"Cannot undo '{original.summary}': '{label}' has been changed since"))

    total = len(entries)
    with recording("undo", summary) as rec:
        if len({(entry.table_name, entry.record_id) for entry in entries}) < total:
            # A row touched twice in one change set: each step depends on the one before, so one by one.
            for done, entry in enumerate(entries, start=1):
                _revert_one(models[entry.table_name], entry, rec, stale)
                if done % REVERT_CHUNK == 0:
                    progress.report(done, total, "Undoing…")
        else:
            _check_versions(entries, models, stale, progress)
            names = NameBook()  # labels for the rows of an import's ranges
            done = 0
            for run in _runs(entries):
                model = models[run[0].table_name]
                action = run[0].action
                for start in range(0, len(run), REVERT_CHUNK):
                    chunk = run[start:start + REVERT_CHUNK]
                    if action == "insert":
                        _revert_inserts(model, chunk, rec, stale, names)
                    elif action == "delete":
                        _revert_deletes(model, chunk, rec, stale)
                    else:
                        _revert_updates(model, chunk, rec, stale)
                    done += len(chunk)
                    progress.report(done, total, "Undoing…")
        # Deleted rows came back with their own ids: PostgreSQL's sequences move past them once, at the end.
        dialect.sync_id_sequences(*{models[entry.table_name] for entry in entries if entry.action == "delete"})
        return rec.change_set.id


def _id_in(ids: list[int]) -> peewee.SQL:
    """"id" IN (…) as one SQL fragment: Peewee's .in_() builds a node per id, a tenth of a large undo's time."""
    param = dialect.current().param
    return peewee.SQL(f'"id" IN ({", ".join([param] * len(ids))})', ids)


def _runs(entries: list[_Entry]) -> Iterator[list[_Entry]]:
    """Consecutive entries of one table and action: the order between runs is the order of the writes."""
    run: list[_Entry] = []
    for entry in entries:
        if run and (entry.table_name, entry.action) != (run[0].table_name, run[0].action):
            yield run
            run = []
        run.append(entry)
    if run:
        yield run


def _check_versions(entries: list[_Entry], models: dict[str, type[Model]], stale, progress: Progress) -> None:
    """Every row must be as the change set left it (its version; absent if it deleted it), else StaleRecord
    naming the first one that is not, in the order the old one-by-one revert met them. On PostgreSQL the rows
    are locked (FOR UPDATE) so that another save cannot change them between this check and the writes."""
    by_table: dict[str, list[int]] = {}
    for entry in entries:
        by_table.setdefault(entry.table_name, []).append(entry.record_id)
    versions: dict[tuple[str, int], int] = {}
    checked, total = 0, len(entries)
    for table, ids in by_table.items():
        model = models[table]
        for start in range(0, len(ids), REVERT_CHUNK):
            chunk = ids[start:start + REVERT_CHUNK]
            query = model.select(model.id, model.version).where(_id_in(chunk))
            if dialect.is_postgres(dialect.current()):
                query = query.for_update()
            for record_id, version in dialect.fetch_all(*query.sql()):
                versions[table, record_id] = version
            checked += len(chunk)
            progress.report(0, total, f"Checking {checked:,} of {total:,} rows…")
    for entry in entries:
        expected = entry.new["version"] if entry.new else None
        if versions.get((entry.table_name, entry.record_id)) != expected:
            raise stale(entry)


def _label_of(model: type[Model], values: dict[str, Any] | None, record_id: int) -> str:
    """record_label of a row being undone whose entry carries no label (a range of imported rows)."""
    spec = record_type_for_model(model)
    if spec is None or values is None:
        return f"{spec.singular if spec else model._meta.table_name} #{record_id}"
    return record_label(spec, values)


def _revert_inserts(model: type[Model], chunk: list[_Entry], rec: ChangeRecorder, stale, names: NameBook) -> None:
    ids = [entry.record_id for entry in chunk]
    current = snapshots(model, ids)
    deleted = model.delete().where(_id_in(ids)).execute()
    if deleted != len(ids):
        raise stale(next(entry for entry in chunk if entry.record_id not in current))
    table = model._meta.table_name
    # Rows of an import's range have no stored label: they are named from their values (ranges hold records).
    label = names.labeller(record_type_for_model(model)) if not all(entry.label for entry in chunk) else None
    rec.log_many({"table_name": table, "record_id": entry.record_id, "action": "delete",
                  "record_label": entry.label or label(current[entry.record_id]),
                  "old": current[entry.record_id], "new": None} for entry in chunk)


def _revert_deletes(model: type[Model], chunk: list[_Entry], rec: ChangeRecorder, stale) -> None:
    rows = [_stored(model, entry.old) for entry in chunk]
    try:
        # Several rows per statement, under the 999 parameters old SQLite builds allow.
        for batch in peewee.chunked(rows, max(1, 900 // len(model._meta.fields))):
            model.insert_many(batch).execute()
    except IntegrityError as exc:  # the id or the natural key has been taken since
        raise stale(chunk[0]) from exc
    restored = snapshots(model, [entry.record_id for entry in chunk])
    table = model._meta.table_name
    rec.log_many({"table_name": table, "record_id": entry.record_id, "action": "insert", "record_label": entry.label,
                  "old": None, "new": restored[entry.record_id]} for entry in chunk)


def _revert_updates(model: type[Model], chunk: list[_Entry], rec: ChangeRecorder, stale) -> None:
    ids = [entry.record_id for entry in chunk]
    current = snapshots(model, ids)
    for entry in chunk:
        restored = {k: v for k, v in entry.old.items() if k not in ("id", "version")}
        # Names the version checked: on PostgreSQL without the lock another save could have come in between.
        if not model.update(**_stored(model, restored), version=model.version + 1).where(
                model.id == entry.record_id, model.version == entry.new["version"]).execute():
            raise stale(entry)
    after = snapshots(model, ids)
    table = model._meta.table_name
    rec.log_many({"table_name": table, "record_id": entry.record_id, "action": "update", "record_label": entry.label,
                  "old": current[entry.record_id], "new": after[entry.record_id]} for entry in chunk)


def _revert_one(model: type[Model], entry: _Entry, rec: ChangeRecorder, stale) -> None:
    """One entry, checked and written on its own (a change set that touched a row more than once)."""
    current = snapshot(model, entry.record_id)
    expected = entry.new["version"] if entry.new else None
    if (current["version"] if current else None) != expected:
        raise stale(entry)
    # Each write below names the version checked above: on PostgreSQL another save may commit in between.
    if entry.action == "insert":
        if not model.delete().where(model.id == entry.record_id, model.version == expected).execute():
            raise stale(entry)
        rec.log(model, entry.record_id, "delete", entry.label or _label_of(model, current, entry.record_id),
                current, None)
    elif entry.action == "delete":
        try:
            model.insert(**_stored(model, entry.old)).execute()
        except IntegrityError as exc:
            raise stale(entry) from exc
        rec.log(model, entry.record_id, "insert", entry.label, None, snapshot(model, entry.record_id))
    else:
        restored = {k: v for k, v in entry.old.items() if k not in ("id", "version")}
        if not model.update(**_stored(model, restored), version=model.version + 1).where(
                model.id == entry.record_id, model.version == expected).execute():
            raise stale(entry)
        rec.log(model, entry.record_id, "update", entry.label, current, snapshot(model, entry.record_id))
