"""Seeing other people's changes: what the change log reports since a change set, as a window would poll it."""

from __future__ import annotations

import threading
import time

import pytest

from models import changes, schema
from models.changes import Change, ChangeFeed, changes_since, latest_change_set_id
from models.services import create_record, delete_record, recording, update_record


@pytest.fixture
def basics(db):
    armenia = create_record("actors", {"name": "Armenia", "kind": "state", "iso3": "ARM"})
    undof = create_record("missions", {"acronym": "UNDOF", "name": "UN Disengagement Observer Force",
                                       "kind": "peacekeeping_operation"})
    return {"armenia": armenia, "undof": undof}


def test_an_empty_log_starts_at_zero(db):
    assert latest_change_set_id() == 0
    assert changes_since(0) == []


def test_changes_since_name_the_record_the_action_and_the_user(basics, monkeypatch):
    start = latest_change_set_id()
    monkeypatch.setenv("PAXDESK_USER", "aigerim")
    update_record("missions", basics["undof"], {"headquarters": "Camp Faouar"})
    event = create_record("mediation-events", {"title": "Talks", "start_date": "2024-05-10"})
    monkeypatch.setenv("PAXDESK_USER", "brendan")
    delete_record("missions", basics["undof"])
    first, second, third = range(start + 1, start + 4)
    assert changes_since(start) == [
        Change("missions", basics["undof"], "update", "aigerim", first),
        Change("mediation-events", event, "insert", "aigerim", second),
        Change("missions", basics["undof"], "delete", "brendan", third),
    ]
    assert changes_since(third) == []
    assert latest_change_set_id() == third


def test_a_changed_participant_or_citation_is_a_change_of_its_record(basics):
    event = create_record("mediation-events", {"title": "Talks", "start_date": "2024-05-10"})
    source = create_record("sources", {"title": "Founding article"})
    start = latest_change_set_id()
    update_record("mediation-events", event, {}, links={
        "participants": [{"actor": basics["armenia"], "role": "party"}],
        "citations": [{"source": source, "locator": "p. 2"}]})
    assert [(c.record_type, c.record_id, c.action) for c in changes_since(start)] == [
        ("mediation-events", event, "update")]


def test_a_big_import_is_reported_per_table(basics, monkeypatch):
    monkeypatch.setattr(changes, "DETAIL_LIMIT", 3)
    start = latest_change_set_id()
    with recording("import", "Import actors") as recorder:
        for number in range(5):
            create_record("actors", {"name": f"Actor {number}", "kind": "ngo"}, recorder=recorder)
    assert changes_since(start) == [Change("actors", None, "update", "tester", start + 1)]


def test_the_feed_reports_each_change_once(basics):
    feed = ChangeFeed()
    assert feed.poll() == []
    update_record("missions", basics["undof"], {"headquarters": "Camp Faouar"})
    assert [c.record_id for c in feed.poll()] == [basics["undof"]]
    assert feed.poll() == []


def test_the_feed_reports_a_change_set_that_commits_after_a_later_one(basics):
    """On PostgreSQL a save that took its change-set id first may commit last; simulated here on both
    engines by leaving an id out and filling it in afterwards."""
    feed = ChangeFeed()
    later = latest_change_set_id() + 2
    schema.ChangeSet.insert(id=later, user="brendan", kind="edit", summary="Later").execute()
    assert [c.change_set_id for c in feed.poll()] == []  # nothing in it, but its id is seen
    schema.ChangeSet.insert(id=later - 1, user="aigerim", kind="edit", summary="Earlier").execute()
    schema.ChangeLogEntry.insert(change_set=later - 1, table_name="mission", record_id=basics["undof"],
                                 action="update").execute()
    assert feed.poll() == [Change("missions", basics["undof"], "update", "aigerim", later - 1)]
    assert feed.waiting == {}


@pytest.mark.postgresql_only
def test_the_feed_sees_a_long_transaction_that_commits_after_a_short_one(basics):
    feed = ChangeFeed()
    opened, short_done = threading.Event(), threading.Event()

    def long_import():
        with recording("import", "Slow import") as recorder:
            create_record("actors", {"name": "Kazakhstan", "kind": "state"}, recorder=recorder)
            opened.set()
            assert short_done.wait(30)
        schema.database.close()

    worker = threading.Thread(target=long_import)
    worker.start()
    assert opened.wait(30)
    update_record("missions", basics["undof"], {"headquarters": "Camp Faouar"})
    short_done.set()
    first = feed.poll()
    worker.join(30)
    second = feed.poll()
    seen = [(c.record_type, c.action) for c in first + second]
    assert sorted(seen) == [("actors", "insert"), ("missions", "update")]


def test_polling_a_long_log_stays_cheap(basics):
    """The poll reads the newest ids through the primary key and the entries through their change-set
    index, so a long log does not slow it down."""
    start = latest_change_set_id()
    rows = [{"user": "importer", "kind": "edit", "summary": f"Edit {n}"} for n in range(20_000)]
    with schema.database.atomic():
        for offset in range(0, len(rows), 1000):
            schema.ChangeSet.insert_many(rows[offset:offset + 1000]).execute()
    feed = ChangeFeed()
    update_record("missions", basics["undof"], {"headquarters": "Camp Faouar"})
    assert [c.record_id for c in feed.poll()] == [basics["undof"]]
    assert feed.seen > start + 20_000
    started = time.perf_counter()
    for _ in range(20):
        assert feed.poll() == []
    per_poll = (time.perf_counter() - started) / 20
    assert per_poll < 0.05, f"{per_poll * 1000:.1f} ms per poll"
    indexed = [tuple(index.columns) for index in schema.database.get_indexes("change_log_entry")]
    assert ("change_set_id",) in indexed


def test_more_change_sets_than_one_poll_reads_come_in_the_next_polls(basics, monkeypatch):
    monkeypatch.setattr(changes, "POLL_LIMIT", 2)
    feed = ChangeFeed()
    for number in range(5):
        create_record("actors", {"name": f"Actor {number}", "kind": "ngo"})
    polls = [[c.action for c in feed.poll()] for _ in range(4)]
    assert polls == [["insert", "insert"], ["insert", "insert"], ["insert"], []]
    assert feed.waiting == {}
