"""The window's watch on other people's saves: signals with what changed, a lost database reported once."""

from __future__ import annotations

import threading

import pytest

from gui.change_watcher import ChangeWatcher
from models import changes, schema
from models.changes import latest_change_set_id
from models.dialect import ConnectionLost
from models.services import create_record, update_record


@pytest.fixture
def watcher(db, qtbot):
    watcher = ChangeWatcher(interval_ms=50)
    watcher.start()
    yield watcher
    watcher.stop()


def save_elsewhere(work) -> None:
    """Another user's save: another thread, so another connection."""
    thread = threading.Thread(target=lambda: (work(), schema.database.close()))
    thread.start()
    thread.join(30)


def test_another_users_save_arrives(watcher, qtbot, monkeypatch):
    watcher.start(since=latest_change_set_id())  # what the window showed when it loaded its view
    monkeypatch.setenv("PAXDESK_USER", "aigerim")
    with qtbot.waitSignal(watcher.changes_arrived, timeout=5000) as arrived:
        # saved inside the block: the watcher's thread may report it before the test starts listening
        undof = create_record("missions", {"acronym": "UNDOF", "name": "UN Disengagement Observer Force",
                                           "kind": "peacekeeping_operation"})
    assert [(c.record_type, c.record_id, c.action, c.user) for c in arrived.args[0]] == [
        ("missions", undof, "insert", "aigerim")]
    with qtbot.waitSignal(watcher.changes_arrived, timeout=5000) as arrived:
        save_elsewhere(lambda: update_record("missions", undof, {"headquarters": "Camp Faouar"}))
    assert [(c.record_id, c.action) for c in arrived.args[0]] == [(undof, "update")]


def test_nothing_arrives_when_nothing_changed(watcher, qtbot):
    with qtbot.assertNotEmitted(watcher.changes_arrived, wait=300):
        pass


def test_a_lost_database_is_reported_once_and_watched_again(watcher, qtbot, monkeypatch):
    lost = threading.Event()
    lost.set()
    original = changes.ChangeFeed.poll

    def poll(feed):
        if lost.is_set():
            raise ConnectionLost("Lost the connection to the database server: server closed the connection")
        return original(feed)

    monkeypatch.setattr(changes.ChangeFeed, "poll", poll)
    reports = []
    watcher.connection_lost.connect(reports.append)
    with qtbot.waitSignal(watcher.connection_lost, timeout=5000):
        pass
    qtbot.wait(300)  # several more failed polls
    assert reports == ["Cannot see other people's changes: Lost the connection to the database server: "
                       "server closed the connection"]
    with qtbot.waitSignal(watcher.connection_restored, timeout=5000):
        lost.clear()
    with qtbot.waitSignal(watcher.changes_arrived, timeout=5000) as arrived:
        create_record("actors", {"name": "Kazakhstan", "kind": "state"})
    assert arrived.args[0][0].record_type == "actors"


def test_a_stopped_watcher_stays_quiet(watcher, qtbot):
    watcher.stop()
    assert not watcher.active
    with qtbot.assertNotEmitted(watcher.changes_arrived, wait=300):
        create_record("actors", {"name": "Kazakhstan", "kind": "state"})


def test_the_window_keeps_server_passwords_out_of_its_settings(db, db_target, tmp_path, qtbot):
    from PySide6.QtCore import QSettings

    from gui.app import create_application
    from gui.main_window import MainWindow

    create_application()
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(db_target, settings=settings)
    qtbot.addWidget(window)
    window._remember_recent("postgresql://curator:s3cret@db.example.org:5432/paxdesk?sslmode=require")
    settings.sync()
    assert settings.value("recentDatabases")[0] == "postgresql://curator@db.example.org:5432/paxdesk?sslmode=require"
    assert "s3cret" not in (tmp_path / "settings.ini").read_text()
    window.close()
