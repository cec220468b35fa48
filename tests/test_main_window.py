"""The main window as a curator uses it: sidebar, search, filters, sort, status bar, delete, layout memory,
and the --screenshot command."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QMessageBox

import main
from gui.app import create_application
from gui.main_window import MainWindow
from gui.table_model import RecordTableModel
from models import schema, services
from models.changes import latest_change_set_id
from models.dialect import ConnectionLost
from models.queries import RecordQuery
from models.records import GROUPS, RECORD_TYPES


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(seeded_db, db_target, settings, qtbot):
    create_application()
    shown = MainWindow(db_target, settings=settings)
    qtbot.addWidget(shown)
    shown.show()
    yield shown
    shown.close()


def column_texts(window: MainWindow, name: str) -> list[str]:
    model = window.model
    column = model.column_index(name)
    return [model.data(model.index(row, column)) for row in range(model.rowCount())]


def click_header(window: MainWindow, qtbot, name: str) -> None:
    header = window.filter_header
    section = window.model.column_index(name)
    point = QPoint(header.sectionViewportPosition(section) + 12, 8)  # on the title, above the filter box
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=point)


def show(window: MainWindow, qtbot, key: str) -> None:
    with qtbot.waitSignal(window.view_changed, timeout=5000):
        window.sidebar.select(key)


def test_window_opens_on_the_seeded_database(window, db_target):
    assert Path(db_target).name in window.windowTitle()
    headings = [window.sidebar.topLevelItem(i).text(0) for i in range(window.sidebar.topLevelItemCount())]
    assert headings == [group.upper() for group in GROUPS]
    mediation = window.sidebar.topLevelItem(0)
    assert [mediation.child(i).text(0) for i in range(mediation.childCount())] == [
        "Mediation events", "Peace processes", "Agreements"]
    assert window.current_key == "mediation-events"
    assert window.model.rowCount() == schema.MediationEvent.select().count() > 0
    assert window.selected_record_id() == window.model.record_id(0)
    assert window.form.record_key == "mediation-events" and window.form.record_id == window.model.record_id(0)
    assert db_target in window.database_label.text()
    assert window.count_label.text() == f"{window.model.rowCount()} mediation events"
    assert window.filter_label.text() == "No filter"


def test_sidebar_switches_the_table_and_the_form(window, qtbot):
    show(window, qtbot, "contributions")
    assert window.title_label.text() == "Contributions"
    assert window.model.key == "contributions"
    labels = header_titles(window)  # as the header on screen reads them
    assert labels == [window.model.headerData(i, Qt.Orientation.Horizontal) for i in range(window.model.columnCount())]
    assert "Contributing country" in labels and "Personnel type" in labels
    assert "Kazakhstan" in column_texts(window, "contributor")  # related records by name, never by id
    assert window.form.record_key == "contributions"
    assert window.count_label.text() == f"{schema.Contribution.select().count()} contributions"
    show(window, qtbot, "actors")
    assert window.sidebar.current_key == "actors" and window.model.key == "actors"
    assert header_titles(window) == ["ID", "Name", "Kind", "ISO 3166 alpha-3", "UN M49 code"]


def header_titles(window) -> list[str]:
    header = window.filter_header
    return [header.model().headerData(section, Qt.Orientation.Horizontal) for section in range(header.count())]


def test_search_box_finds_the_talks_held_in_almaty(window, qtbot):
    total = window.model.rowCount()
    with qtbot.waitSignal(window.model.modelReset, timeout=3000):
        qtbot.keyClicks(window.search_box, "Almaty")
    titles = column_texts(window, "title")
    assert "Armenia–Azerbaijan talks in Almaty" in titles
    assert "Iran–P5+1 nuclear talks in Almaty, second round" in titles
    assert set(column_texts(window, "venue_city")) == {"Almaty"}
    assert window.count_label.text() == f"{len(titles)} of {total} mediation events"
    assert "Almaty" in window.filter_label.text()


def test_clicking_a_header_sorts_by_that_column(window, qtbot):
    click_header(window, qtbot, "title")
    titles = column_texts(window, "title")
    assert titles == sorted(titles)
    click_header(window, qtbot, "title")
    assert column_texts(window, "title") == sorted(titles, reverse=True)
    assert window.filter_header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder


def test_a_column_filter_narrows_the_rows_and_the_status_bar_says_so(window, qtbot):
    total = window.model.rowCount()
    editor = window.filter_header.editor("title")
    with qtbot.waitSignal(window.model.modelReset, timeout=3000):
        qtbot.keyClicks(editor, "second")
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    assert column_texts(window, "title") == ["Iran–P5+1 nuclear talks in Almaty, second round"]
    assert window.count_label.text() == f"1 of {total} mediation events"
    assert window.filter_label.text() == "Filter: Title contains “second”"
    window.clear_filters_action.trigger()
    assert window.model.rowCount() == total and window.filter_label.text() == "No filter"


def test_a_slow_search_leaves_the_rows_on_screen_while_it_is_read(window, qtbot, monkeypatch):
    show(window, qtbot, "actors")
    assert window.model.wait_until_loaded()
    # The 282 seeded actors stand for a million: no new search is read within the time the GUI thread gives it.
    monkeypatch.setattr(RecordTableModel, "FIRST_BLOCK_TIME_LIMIT_S", -1.0)
    window.search_box.setText("Kazakhstan")
    with qtbot.waitSignal(window.model.loaded, timeout=5000):
        qtbot.keyClick(window.search_box, Qt.Key.Key_Return)
        assert window.count_label.text() == "Reading actors…"  # the search is read off the GUI thread
        assert window.model.rowCount() == 282
    assert "Kazakhstan" in column_texts(window, "name")
    assert window.count_label.text() == f"{window.model.rowCount()} of 282 actors"


def test_a_slow_sort_says_it_is_reading_until_its_rows_come(window, qtbot, monkeypatch):
    show(window, qtbot, "actors")
    assert window.model.wait_until_loaded()
    monkeypatch.setattr(RecordTableModel, "FIRST_BLOCK_TIME_LIMIT_S", -1.0)  # as for a million rows
    with qtbot.waitSignal(window.model.loaded, timeout=5000):
        click_header(window, qtbot, "name")
        assert window.count_label.text() == "Reading actors…"
    names = column_texts(window, "name")
    assert names == sorted(names) and window.count_label.text() == "282 actors"


def _select(window: MainWindow, qtbot, key: str, search: str) -> int:
    show(window, qtbot, key)
    with qtbot.waitSignal(window.model.modelReset, timeout=3000):
        window.search_box.setText(search)
        window.search_box.returnPressed.emit()
    window.select_row(0)
    return window.selected_record_id()


@pytest.mark.parametrize(("key", "name", "referrer"), [
    ("actors", "Kazakhstan", "Armenia–Azerbaijan talks in Almaty"),
    ("missions", "UNDOF", "KAZCON"),
])
def test_deleting_a_referenced_record_is_refused_naming_its_referrers(window, qtbot, monkeypatch, key, name,
                                                                      referrer):
    record_id = _select(window, qtbot, key, name)
    assert column_texts(window, RECORD_TYPES[key].name_field)[0] == name
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text, *a, **k: warnings.append(text))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: pytest.fail("asked to confirm a refused delete"))
    window.delete_action.trigger()
    assert len(warnings) == 1 and name in warnings[0] and referrer in warnings[0]
    assert window.model.row_of(record_id) == 0
    assert RECORD_TYPES[key].model.get_or_none(RECORD_TYPES[key].model.id == record_id) is not None


def test_deleting_an_unreferenced_record_after_confirming_removes_it_and_undo_brings_it_back(window, qtbot,
                                                                                              monkeypatch):
    record_id = _select(window, qtbot, "incidents", "Abyei")
    asked: list[str] = []

    def confirm(_parent, _title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", confirm)
    window.delete_action.trigger()
    assert asked and "Attack on villages in Abyei" in asked[0]
    assert window.model.row_of(record_id) == -1
    assert schema.Incident.get_or_none(schema.Incident.id == record_id) is None
    assert window.sidebar.count("incidents") == 0
    window.undo_action.trigger()
    assert schema.Incident.get_or_none(schema.Incident.id == record_id) is not None
    assert window.model.row_of(record_id) == 0


def test_a_cancelled_delete_keeps_the_record(window, qtbot, monkeypatch):
    record_id = _select(window, qtbot, "incidents", "Abyei")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    window.delete_action.trigger()
    assert window.model.row_of(record_id) == 0
    assert window.undo_stack.count() == 0


def test_new_record_clears_the_selection_and_opens_an_empty_form(window):
    window.new_action.trigger()
    assert window.selected_record_id() is None
    assert window.form.record_key == "mediation-events" and window.form.record_id is None


def test_column_widths_order_and_sort_are_remembered_per_view(seeded_db, db_target, settings, qtbot):
    create_application()
    first = MainWindow(db_target, settings=settings)
    qtbot.addWidget(first)
    first.show()
    header = first.filter_header
    title = first.model.column_index("title")
    header.resizeSection(title, 333)
    header.moveSection(header.visualIndex(title), 0)
    last = first.model.columnCount() - 1  # a column the actors' view does not have
    header.resizeSection(last, 222)
    click_header(first, qtbot, "start_date")
    first.show_view("actors")
    assert first.model.columnCount() <= last
    first.close()

    second = MainWindow(db_target, settings=settings)
    qtbot.addWidget(second)
    second.show()
    assert second.current_key == "actors"  # the last view shown
    second.show_view("mediation-events")
    header = second.filter_header
    assert header.sectionSize(title) == 333 and header.visualIndex(title) == 0
    assert header.sectionSize(last) == 222
    assert second.model.query.sort_column == "start_date"
    second.close()


def test_recent_databases_are_remembered(window, settings, db_target, tmp_path, qtbot):
    other = tmp_path / "other.sqlite3"
    assert window.open_target(str(other), seed=True)
    assert window.model.rowCount() > 0  # a new database holds the reference data and the founding case
    recent = settings.value("recentDatabases")
    assert Path(recent[0]) == other.resolve() and Path(recent[1]) == Path(db_target).resolve()
    assert other.name in window.windowTitle()


def test_opening_something_that_is_not_a_database_keeps_the_current_one(window, tmp_path, monkeypatch):
    not_a_database = tmp_path / "notes.sqlite3"
    not_a_database.write_text("just some notes")
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text, *a, **k: warnings.append(text))
    rows = window.model.rowCount()
    assert not window.open_target(str(not_a_database))
    assert warnings and "not a PaxDesk database" in warnings[0]
    assert window.model.rowCount() == rows and schema.MediationEvent.select().count() == rows


@pytest.mark.parametrize("key", list(RECORD_TYPES))
def test_screenshot_writes_a_png_of_every_view(seeded_db, db_target, tmp_path, qtbot, key, capsys):
    out = tmp_path / f"{key}.png"
    assert main.main(["--db", db_target, "--screenshot", str(out), "--view", key]) == 0
    image = QImage(str(out))
    assert not image.isNull() and (image.width(), image.height()) == (1280, 800)


def test_screenshot_of_an_unknown_view_is_one_line_and_exit_2(seeded_db, db_target, tmp_path, capsys):
    out = tmp_path / "shot.png"
    assert main.main(["--db", db_target, "--screenshot", str(out), "--view", "treaties"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "unknown view 'treaties'" in error and "mediation-events" in error
    assert not out.exists()


def test_unsaved_changes_kept_keep_the_selection_on_the_record_being_edited(window, monkeypatch):
    first = window.selected_record_id()
    monkeypatch.setattr(window.form, "confirm_discard", lambda: False)  # the curator chose Cancel
    window.select_row(1)
    assert window.selected_record_id() == first and window.form.record_id == first


def test_a_record_saved_in_the_form_appears_selected_in_the_table(window, qtbot):
    record_id = services.create_record("mediation-events", {"title": "Talks in Astana on the Caspian",
                                                            "start_date": "2019-06"})
    window.form.record_saved.emit("mediation-events", record_id)
    assert window.selected_record_id() == record_id
    assert "Talks in Astana on the Caspian" in column_texts(window, "title")
    assert window.sidebar.count("mediation-events") == window.model.rowCount()


def test_changes_saved_elsewhere_show_up_without_a_reload(window, qtbot):
    rows = window.model.rowCount()
    qtbot.wait(300)  # the watcher's first look sets where "new" starts
    services.create_record("mediation-events", {"title": "Round held by another curator", "start_date": "2020"})
    with qtbot.waitSignal(window.watcher.changes_arrived, timeout=10_000):
        window.watcher.poll()
    assert window.model.rowCount() == rows + 1
    assert "Round held by another curator" in column_texts(window, "title")


# --- other people's changes: only what shows them is read again ---------------------------------------

def save_elsewhere(work) -> None:
    """Another curator's save: another thread, so another connection."""
    thread = threading.Thread(target=lambda: (work(), schema.database.close()))
    thread.start()
    thread.join(30)


def deliver(window: MainWindow, qtbot, work, monkeypatch, user: str = "aigerim") -> None:
    """Save `work` as `user` from elsewhere and wait until the window has taken it in."""
    monkeypatch.setenv("PAXDESK_USER", user)
    with qtbot.waitSignal(window.watcher.changes_arrived, timeout=10_000):
        save_elsewhere(work)
        window.watcher.poll()
    monkeypatch.setenv("PAXDESK_USER", "tester")


@pytest.fixture
def watching(window):
    window.watcher.start(since=latest_change_set_id())  # "new" starts now, whatever the first look saw
    return window


def test_a_mission_saved_elsewhere_leaves_the_mediation_table_alone_but_counts_it(watching, qtbot, monkeypatch):
    window = watching
    window.select_row(2)
    chosen = window.selected_record_id()
    resets: list[int] = []
    window.model.modelReset.connect(lambda: resets.append(1))
    missions = window.sidebar.count("missions")
    deliver(window, qtbot, lambda: services.create_record("missions", {
        "acronym": "UNTAG", "name": "UN Transition Assistance Group",
        "kind": "peacekeeping_operation"}), monkeypatch)
    assert resets == []  # the events table shows nothing of missions: not read again
    assert window.sidebar.count("missions") == missions + 1
    assert window.selected_record_id() == chosen
    assert "aigerim" in window.statusBar().currentMessage()


def test_an_actor_renamed_elsewhere_shows_in_the_contributions_table(watching, qtbot, monkeypatch):
    window = watching
    show(window, qtbot, "contributions")
    window.select_row(1)
    chosen = window.selected_record_id()
    kazakhstan = schema.Actor.get(schema.Actor.name == "Kazakhstan").id
    with qtbot.waitSignal(window.model.modelReset, timeout=10_000):
        deliver(window, qtbot, lambda: services.update_record("actors", kazakhstan,
                                                              {"name": "Republic of Kazakhstan"}), monkeypatch)
    assert "Republic of Kazakhstan" in column_texts(window, "contributor")
    assert "Kazakhstan" not in column_texts(window, "contributor")
    qtbot.waitUntil(lambda: window.selected_record_id() == chosen, timeout=5000)
    assert window.form.record_id == chosen


def test_the_shown_record_changed_elsewhere_reloads_a_clean_form(watching, qtbot, monkeypatch):
    window = watching
    shown = window.form.record_id
    deliver(window, qtbot, lambda: services.update_record("mediation-events", shown, {"venue_city": "Astana"}),
            monkeypatch)
    assert window.form._page.editors["venue_city"].control.text() == "Astana"
    assert window.statusBar().currentMessage() == "The shown mediation event was changed by aigerim."


def test_the_shown_record_changed_elsewhere_never_touches_unsaved_edits(watching, qtbot, monkeypatch):
    window = watching
    shown = window.form.record_id
    city = window.form._page.editors["venue_city"].control
    city.setFocus()
    city.selectAll()
    qtbot.keyClicks(city, "Nur-Sultan")
    assert window.form.has_unsaved_changes()
    deliver(window, qtbot, lambda: services.update_record("mediation-events", shown, {"title": "Renamed round"}),
            monkeypatch)
    assert city.text() == "Nur-Sultan" and window.form.has_unsaved_changes()
    assert window.form.banner.isVisibleTo(window.form) and window.form.reload_button.isVisibleTo(window.form)
    assert "aigerim changed this mediation event" in window.form.banner_text.text()
    assert "was changed by aigerim" in window.statusBar().currentMessage()
    assert window.selected_record_id() == shown
    qtbot.mouseClick(window.form.reload_button, Qt.MouseButton.LeftButton)  # the curator takes theirs
    assert city.text() != "Nur-Sultan" and not window.form.has_unsaved_changes()


# --- a database that cannot be read -------------------------------------------------------------------

def lost(*_args, **_kwargs):
    raise ConnectionLost("Lost the connection to the database server: server closed the connection")


def lose_reads(monkeypatch, names=("page", "display_page", "rows", "display_rows", "ids", "id_array",
                                   "count")) -> None:
    """Every read RecordQuery offers (by whichever name the table model uses) finds the server gone."""
    for name in names:
        if hasattr(RecordQuery, name):
            monkeypatch.setattr(RecordQuery, name, lost)


def test_a_view_that_cannot_be_read_is_reported_in_the_status_bar(window, qtbot, monkeypatch):
    rows = window.model.rowCount()
    lose_reads(monkeypatch)
    window.sidebar.select("actors")
    assert window.statusBar().currentMessage() == ("Cannot read the table: Lost the connection to the database "
                                                   "server: server closed the connection")
    # The window stays on the view it shows, whole: title, sidebar, rows.
    assert window.current_key == "mediation-events" and window.sidebar.current_key == "mediation-events"
    assert window.model.key == "mediation-events" and window.model.rowCount() == rows
    window.statusBar().clearMessage()
    window.refresh()
    assert "Lost the connection" in window.statusBar().currentMessage()
    monkeypatch.undo()
    show(window, qtbot, "actors")  # back again: the view opens as usual
    assert window.model.rowCount() > 0


def test_ids_that_cannot_be_read_in_the_background_are_reported(window, qtbot, monkeypatch):
    lose_reads(monkeypatch, ("ids", "id_array"))
    with qtbot.waitSignal(window.model.failed, timeout=10_000):
        window.sidebar.select("actors")  # more rows than the first block: the rest is read in the background
    assert "Cannot read the table: Lost the connection" in window.statusBar().currentMessage()
