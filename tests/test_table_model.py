"""RecordTableModel: one lazy model for every record type; search, filters and sort in SQL; rows by name."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import pytest
from peewee import OperationalError
from PySide6.QtCore import Qt

from gui.table_model import RecordTableModel
from models import schema
from models.dialect import TooSlow
from models.queries import RecordQuery
from models.records import RECORD_TYPES
from models.services import delete_record


def texts(model: RecordTableModel, column: str) -> list[str]:
    index = model.column_index(column)
    return [model.data(model.index(row, index)) for row in range(model.rowCount())]


@pytest.mark.parametrize("key", list(RECORD_TYPES))
def test_every_record_type_passes_the_model_tester(seeded_db, qtmodeltester, key):
    model = RecordTableModel(key)
    assert model.columnCount() == len(RecordQuery(key).columns)
    qtmodeltester.check(model)


def test_search_finds_the_talks_held_in_almaty(seeded_db, qtbot):
    model = RecordTableModel("mediation-events")
    all_events = model.rowCount()
    model.set_search("Almaty")
    titles = texts(model, "title")
    assert "Armenia–Azerbaijan talks in Almaty" in titles
    assert "Iran–P5+1 nuclear talks in Almaty, first round" in titles
    assert all(city == "Almaty" for city in texts(model, "venue_city"))
    assert 0 < model.rowCount() < all_events


def test_related_records_show_by_name_and_dates_read_as_words(seeded_db, qtbot):
    model = RecordTableModel("contributions")
    model.set_filter("mission", "UNDOF")
    assert texts(model, "contributor") == ["Kazakhstan"]
    assert texts(model, "mission") == ["UNDOF"]
    assert texts(model, "reporting_date") == ["31 May 2024"]
    assert texts(model, "total_count") == ["139"]
    events = RecordTableModel("mediation-events")
    events.set_search("Armenia–Azerbaijan talks")
    assert texts(events, "start_date") == ["10 May 2024"]
    assert texts(events, "venue_country") == ["Kazakhstan"]


def test_sorting_by_a_related_name_orders_by_that_name(seeded_db, qtbot):
    model = RecordTableModel("contributions")
    model.sort(model.column_index("mission"), Qt.SortOrder.DescendingOrder)
    missions = [m for m in texts(model, "mission") if m]
    assert missions == sorted(missions, reverse=True) and len(set(missions)) > 1
    assert model.sort_section() == (model.column_index("mission"), Qt.SortOrder.DescendingOrder)


def test_column_filter_on_a_code_matches_its_label(seeded_db, qtbot):
    model = RecordTableModel("contributions")
    model.set_filter("personnel_type", "staff")
    assert set(texts(model, "personnel_type")) == {"Staff Officer"}
    model.set_filter("personnel_type", "")
    assert len(set(texts(model, "personnel_type"))) > 1


def _many_contributions(count: int) -> None:
    """Synthetic rows straight into the table: bulk test data, not a user's edit."""
    actors = [a.id for a in schema.Actor.select(schema.Actor.id).where(schema.Actor.kind == "state").limit(60)]
    missions = [m.id for m in schema.Mission.select(schema.Mission.id).limit(5)]
    rows, day = [], dt.date(2000, 1, 31)
    for n in range(count):
        rows.append({"reporting_date": day + dt.timedelta(days=31 * (n // 300)), "contributor": actors[n % 60],
                     "mission": missions[(n // 60) % 5], "personnel_type": "Troops", "male_count": n,
                     "female_count": 0, "total_count": n})
    with schema.database.atomic():
        for start in range(0, len(rows), 200):
            schema.Contribution.insert_many(rows[start:start + 200]).execute()


def test_a_large_table_shows_its_first_block_then_every_row(seeded_db, qtbot):
    _many_contributions(1200)
    total = RecordQuery("contributions").count()
    model = RecordTableModel("contributions")
    assert model.rowCount() == RecordTableModel.BLOCK and not model.is_complete  # first rows at once
    with qtbot.waitSignal(model.loaded, timeout=10_000):
        pass
    assert model.is_complete and model.rowCount() == total
    last = model.index(total - 1, model.column_index("id"))
    assert int(model.data(last)) == max(RecordQuery("contributions").ids())


def test_sorted_large_table_keeps_the_sql_order(seeded_db, qtbot):
    _many_contributions(700)
    model = RecordTableModel("contributions")
    with qtbot.waitSignal(model.loaded, timeout=10_000):
        model.sort(model.column_index("contributor"), Qt.SortOrder.DescendingOrder)
    expected = RecordQuery("contributions", sort_column="contributor", descending=True).ids()
    assert [model.record_id(row) for row in range(model.rowCount())] == expected


def test_a_newer_filter_wins_over_a_read_still_running(seeded_db, qtbot):
    _many_contributions(900)
    model = RecordTableModel("contributions")  # its id read is pending
    model.set_filter("contributor", "Kazakhstan")
    qtbot.wait(300)  # any stale read would have landed by now
    assert model.is_complete
    assert set(texts(model, "contributor")) == {"Kazakhstan"}
    assert model.rowCount() == RecordQuery("contributions", filters={"contributor": "Kazakhstan"}).count()


def test_memory_holds_a_bounded_number_of_display_rows(seeded_db, qtbot, monkeypatch):
    _many_contributions(1000)
    monkeypatch.setattr(RecordTableModel, "CACHE_BLOCKS", 3)
    model = RecordTableModel("contributions", background=False)
    column = model.column_index("total_count")
    shown = [model.data(model.index(row, column)) for row in range(model.rowCount())]
    assert len(shown) > 1000 and all(shown[-1000:])
    assert model.cached_rows() <= 3 * RecordTableModel.BLOCK


def test_a_record_deleted_after_the_ids_were_read_shows_as_deleted(seeded_db, qtbot):
    model = RecordTableModel("incidents")
    record_id = model.record_id(0)
    delete_record("incidents", record_id)  # by someone else, after this view read its ids
    model._cache.clear()  # as if the row had scrolled out of the cache meanwhile
    assert model.record(0) is None
    assert model.data(model.index(0, 0)) == "(deleted)"


def test_actors_view_finds_a_country_by_its_other_names(seeded_db, qtbot):
    model = RecordTableModel("actors")
    model.set_search("Қазақстан")
    assert texts(model, "name") == ["Kazakhstan"]
    model.set_search("Turkey")
    assert texts(model, "name") == ["Türkiye"]


def test_a_large_table_sorted_by_country_shows_its_first_rows_at_once(seeded_db, qtbot):
    _many_contributions(1200)
    model = RecordTableModel("contributions")
    with qtbot.waitSignal(model.loaded, timeout=10_000):
        model.sort(model.column_index("contributor"))
        # the first block is there before the full list of ids, in the order of the whole view
        assert model.rowCount() == RecordTableModel.BLOCK and not model.is_complete
        first_rows = [model.record_id(row) for row in range(model.rowCount())]
    assert first_rows == RecordQuery("contributions", sort_column="contributor").ids()[:RecordTableModel.BLOCK]
    assert model.rowCount() == RecordQuery("contributions").count()


def test_rows_the_database_will_not_give_show_as_unread_and_the_model_says_why(seeded_db, qtbot, monkeypatch):
    model = RecordTableModel("actors", background=False)  # 282 actors: the first block read, the rest not yet
    last = model.rowCount() - 1

    def unreadable(self, ids):
        raise OperationalError("disk I/O error")

    monkeypatch.setattr(RecordQuery, "display_rows", unreadable)
    with qtbot.waitSignal(model.failed) as failure:
        shown = model.data(model.index(last, 0))  # as a paint reaches it: no exception may escape
    assert failure.args == ["disk I/O error"]
    assert shown == "(not read)" and model.row_texts(last)[0] == "(not read)"
    assert model.record(last) is None
    assert model.data(model.index(0, model.column_index("name"))) == "Aruba"  # read before: still shown
    monkeypatch.undo()
    model.reload()
    assert model.record(last)["name"]


@pytest.fixture
def large_view(seeded_db, qtbot, monkeypatch):
    """The seeded 282 actors, standing for a million: no new search, filter or sort is read within the time the
    GUI thread gives it."""
    model = RecordTableModel("actors")
    assert model.wait_until_loaded() and model.rowCount() == 282
    monkeypatch.setattr(RecordTableModel, "FIRST_BLOCK_TIME_LIMIT_S", -1.0)
    return model


def test_a_slow_search_is_read_in_the_background_while_the_rows_shown_stay(large_view):
    model = large_view
    shown = texts(model, "name")
    model.set_search("Kazakhstan")
    assert not model.is_current and not model.is_complete
    assert texts(model, "name") == shown  # the window goes on showing the rows it has
    assert model.wait_until_loaded() and model.is_current
    assert "Kazakhstan" in texts(model, "name") and model.rowCount() < 10


def test_a_newer_search_supersedes_one_still_being_read(large_view):
    model = large_view
    model.set_search("Kazakhstan")
    model.sort(model.column_index("name"), Qt.SortOrder.DescendingOrder)
    model.set_search("Armenia")
    assert model.wait_until_loaded() and model.is_current
    assert "Armenia" in texts(model, "name") and "Kazakhstan" not in texts(model, "name")
    assert model.sort_section() == (model.column_index("name"), Qt.SortOrder.DescendingOrder)


def test_a_search_the_database_will_not_answer_keeps_the_rows_and_says_why(large_view, qtbot, monkeypatch):
    model = large_view
    shown = texts(model, "name")

    def unreadable(self, offset, limit):
        raise OperationalError("database is locked")

    monkeypatch.setattr(RecordQuery, "display_page", unreadable)
    monkeypatch.setattr("gui.table_model.time_limit", lambda seconds: _too_slow())
    with qtbot.waitSignal(model.failed) as failure:
        model.set_search("Kazakhstan")
    assert failure.args == ["database is locked"]
    assert model.is_complete and not model.is_current
    assert texts(model, "name") == shown


@contextmanager
def _too_slow():
    raise TooSlow("gave up")
    yield
