"""Other people's changes, read from the change log: which records changed since a given change set, cheap
enough to ask every few seconds (primary-key and change_set_id indexes only)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from peewee import fn

from models import schema
from models.records import RECORD_TYPES

# Beyond this many rows (a big import), a poll reports "this table changed" instead of each record.
DETAIL_LIMIT = 2000
# How long a missing change-set id is watched for: on PostgreSQL a transaction that took its id earlier may
# commit after a later one, so a poll may see id 12 before id 11. Rolled-back saves leave ids that never come.
GAP_PATIENCE_SECONDS = 3600.0
GAP_LIMIT = 2000
# Change sets read per poll; more wait for the next one.
POLL_LIMIT = 5000


@dataclass(frozen=True)
class Change:
    """One record a person would see change: link rows (participants, aliases, citations…) are reported as
    an update of the record they belong to. record_id None: many records of this type changed."""

    record_type: str
    record_id: int | None
    action: str  # insert, update, delete
    user: str
    change_set_id: int


def latest_change_set_id() -> int:
    """The newest change set's id, 0 for an empty log: where a window starts watching."""
    return schema.ChangeSet.select(fn.MAX(schema.ChangeSet.id)).scalar() or 0


def changes_since(change_set_id: int) -> list[Change]:
    """The records changed by change sets after `change_set_id`, oldest first."""
    ids = [row[0] for row in schema.ChangeSet.select(schema.ChangeSet.id)
           .where(schema.ChangeSet.id > change_set_id).order_by(schema.ChangeSet.id).tuples()]
    return changes_in(ids)


def changes_in(change_set_ids: Iterable[int]) -> list[Change]:
    """The records changed by the given change sets, oldest first."""
    ids = sorted(set(change_set_ids))
    if not ids:
        return []
    entry, change_set = schema.ChangeLogEntry, schema.ChangeSet
    query = (entry.select(entry.change_set, entry.table_name, entry.record_id, entry.action, entry.old_values,
                          entry.new_values, change_set.user, entry.last_record_id)
             .join(change_set).where(entry.change_set.in_(ids)).order_by(entry.id))
    rows = list(query.limit(DETAIL_LIMIT + 1).tuples())
    # An entry for a range of imported rows (last_record_id) counts as the rows it holds.
    if sum(1 if last_id is None else last_id - first_id + 1 for _, _, first_id, *_, last_id in rows) > DETAIL_LIMIT:
        return _whole_tables(ids)
    changes: dict[Change, None] = {}  # ordered and without repeats
    for set_id, table, first_id, action, old, new, user, last_id in rows:
        for record_id in range(first_id, (first_id if last_id is None else last_id) + 1):
            change = _as_seen(table, record_id, action, old, new, user, set_id)
            if change is not None:
                changes[change] = None
    return list(changes)


def _whole_tables(ids: list[int]) -> list[Change]:
    entry, change_set = schema.ChangeLogEntry, schema.ChangeSet
    query = (entry.select(entry.table_name, change_set.user, fn.MAX(change_set.id)).join(change_set)
             .where(entry.change_set.in_(ids)).group_by(entry.table_name, change_set.user))
    changes = []
    for table, user, set_id in query.tuples():
        for key in _types_of_table(table):
            change = Change(key, None, "update", user, set_id)
            if change not in changes:
                changes.append(change)
    return changes


def _as_seen(table: str, record_id: int, action: str, old: str | None, new: str | None, user: str,
             set_id: int) -> Change | None:
    spec = _RECORD_BY_TABLE.get(table)
    if spec is not None:
        return Change(spec, record_id, action, user, set_id)
    link = _LINK_BY_TABLE.get(table)
    if link is None:
        return None
    owner_key, owner_field = link
    values = json.loads(new or old or "{}")
    if owner_field is None:  # a citation: it names its record's type and id
        if values.get("record_type") in RECORD_TYPES and values.get("record_id") is not None:
            return Change(values["record_type"], values["record_id"], "update", user, set_id)
        return None
    owner = values.get(owner_field)
    return Change(owner_key, owner, "update", user, set_id) if owner is not None else None


def _types_of_table(table: str) -> list[str]:
    if table in _RECORD_BY_TABLE:
        return [_RECORD_BY_TABLE[table]]
    owner_key, owner_field = _LINK_BY_TABLE.get(table, (None, None))
    if owner_field is None and table in _LINK_BY_TABLE:
        return list(RECORD_TYPES)  # citations may belong to any record type
    return [owner_key] if owner_key else []


_RECORD_BY_TABLE = {spec.model._meta.table_name: key for key, spec in RECORD_TYPES.items()}
_LINK_BY_TABLE = {link.model._meta.table_name: (key, link.owner_field)
                  for key, spec in RECORD_TYPES.items() for link in spec.links}


class ChangeFeed:
    """Successive polls of the change log. Remembers ids below the newest one it has seen that were not
    there yet (a transaction still running on another connection) and reports them when they commit."""

    def __init__(self, start: int | None = None):
        self.seen = latest_change_set_id() if start is None else start
        self.waiting: dict[int, float] = {}  # missing change-set id → when first missed

    def poll(self) -> list[Change]:
        change_set = schema.ChangeSet
        # Two index-only reads, not one with OR: PostgreSQL would walk the whole primary key for "> seen OR IN
        # (...)", and ORDER BY + LIMIT keeps it on the index even before the table has statistics.
        found = [row[0] for row in change_set.select(change_set.id).where(change_set.id > self.seen)
                 .order_by(change_set.id).limit(POLL_LIMIT).tuples()]
        if self.waiting:
            found += [row[0] for row in change_set.select(change_set.id)
                      .where(change_set.id.in_(list(self.waiting))).tuples()]
        now = time.monotonic()
        newest = max(found, default=self.seen)  # found holds ids above seen, or waited-for ones below it
        for missing in set(range(max(self.seen + 1, newest - GAP_LIMIT), newest)) - set(found):
            self.waiting[missing] = now
        for set_id in found:
            self.waiting.pop(set_id, None)
        self.waiting = {k: t for k, t in self.waiting.items() if now - t < GAP_PATIENCE_SECONDS}
        if len(self.waiting) > GAP_LIMIT:
            self.waiting = dict(sorted(self.waiting.items())[-GAP_LIMIT:])
        self.seen = max(self.seen, newest)
        return changes_in(found)
