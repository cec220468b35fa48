"""File → Open server database: the URL dialog, its refusals in plain words, a password that is used and never
kept, and the window left on its database when the server does not answer; the export dialog's settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QMessageBox

from gui.app import create_application
from gui.main_window import MainWindow
from gui.open_server_dialog import BadServerUrl, OpenServerDialog, server_url
from models import schema
from tests.conftest import POSTGRES_URL

PASSWORD = "Pa55 w:rd@/x"  # every character a URL would trip over


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "settings.ini"


@pytest.fixture
def window(seeded_db, db_target, settings_file, qtbot):
    create_application()
    shown = MainWindow(db_target, settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    qtbot.addWidget(shown)
    shown.show()
    yield shown
    shown.close()


@pytest.mark.parametrize(("typed", "says"), [
    ("", "Type the database's URL"),
    ("db.example.org/paxdesk", "starts with postgresql://"),
    ("mysql://curator@db.example.org/paxdesk", "starts with postgresql://"),
    ("postgresql://curator@db.example.org:port/paxdesk", "port after the server's name must be a number"),
    ("postgresql://curator@db.example.org:5432", "names no database"),
    ("postgresql:///paxdesk", "names no server"),
    ("postgresql://curator@db.example.org/pax desk", "no spaces"),
])
def test_urls_that_cannot_name_a_server_database_are_explained(typed, says):
    with pytest.raises(BadServerUrl, match=says):
        server_url(typed)


def test_a_typed_password_goes_into_the_connection_url_encoded():
    url = server_url("postgresql://curator:old@db.example.org:5432/paxdesk?sslmode=require", PASSWORD)
    assert url == "postgresql://curator:Pa55%20w%3Ard%40%2Fx@db.example.org:5432/paxdesk?sslmode=require"
    assert server_url("postgresql://curator@db.example.org/paxdesk") == "postgresql://curator@db.example.org/paxdesk"


def run_dialog(window: MainWindow, qtbot, url: str, password: str = "", *, then=None) -> tuple[bool, str]:
    """Choose File → Open server database…, type, press Open and wait for the answer; `then(dialog)` runs
    while the dialog is still up. Returns whether a database was opened and the dialog's message."""
    seen: dict[str, object] = {}

    def drive() -> None:
        dialog = window.server_dialog
        assert dialog is not None and dialog.isVisible()
        dialog.url_edit.setText(url)
        dialog.password_edit.setText(password)
        with qtbot.waitSignal(dialog.connecting_finished, timeout=30_000):
            qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
        seen["message"] = dialog.message_label.text() if dialog.message_label.isVisible() else ""
        seen["grab"] = dialog.grab()
        if then is not None:
            then(dialog)
        if dialog.isVisible():
            dialog.reject()

    QTimer.singleShot(0, drive)
    opened = window.open_server_dialog()
    return opened, str(seen.get("message", ""))


def test_the_action_is_in_the_file_menu(window):
    assert window.open_server_action in window.file_menu.actions()
    assert window.open_server_action.text() == "Open &server database…"


def test_a_server_that_does_not_answer_is_explained_in_the_dialog_and_the_window_stays(window, qtbot,
                                                                                       settings_file, db_target):
    rows = window.model.rowCount()
    title = window.windowTitle()
    opened, message = run_dialog(window, qtbot, "postgresql://curator@127.0.0.1:1/paxdesk", PASSWORD)
    assert not opened
    assert message.startswith("Cannot connect to postgresql://curator@127.0.0.1:1/paxdesk:")
    assert "refused" in message.lower() and "Traceback" not in message and PASSWORD not in message
    assert window.windowTitle() == title and window.target == db_target
    assert schema.database.obj.database == db_target  # the same database, still open and read
    assert window.model.rowCount() == rows == schema.MediationEvent.select().count()
    window.save_settings()
    assert "127.0.0.1:1" not in settings_file.read_text()  # a database never opened is not "recent"


def test_a_bad_url_is_explained_without_trying_anything(window, qtbot):
    dialog = OpenServerDialog(lambda url: pytest.fail("nothing to open"), parent=window)
    qtbot.addWidget(dialog)
    dialog.url_edit.setText("db.example.org:5432/paxdesk")
    qtbot.mouseClick(dialog.open_button, Qt.MouseButton.LeftButton)
    assert dialog.message_label.isVisibleTo(dialog) and not dialog.busy
    assert "starts with postgresql://" in dialog.message_label.text()


def test_a_recent_server_database_that_refuses_opens_the_dialog_with_why(window, qtbot, monkeypatch):
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(MainWindow, "open_server_dialog",
                        lambda self, url="", message="": shown.append((url, message)) or False)
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: pytest.fail("a server gets the dialog"))
    assert not window.open_target("postgresql://curator@127.0.0.1:1/paxdesk")
    assert shown[0][0] == "postgresql://curator@127.0.0.1:1/paxdesk" and "refused" in shown[0][1].lower()


@pytest.fixture
def server_database(request):
    """A seeded PaxDesk database of its own on the configured PostgreSQL server (dropped afterwards)."""
    server = request.getfixturevalue("postgres_server")
    url = server.create(seeded=True)
    yield url
    server.drop(url)


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PAXDESK_TEST_POSTGRES_URL (a PostgreSQL server to test on)")
def test_a_server_database_opens_with_a_password_that_is_kept_nowhere(server_database, window, qtbot,
                                                                      settings_file, capsys):
    events = window.model.rowCount()
    opened, message = run_dialog(window, qtbot, server_database, PASSWORD)
    assert opened and message == ""
    assert window.target == server_database and window.model.rowCount() == events
    assert schema.database.obj.connect_params.get("password") == PASSWORD  # used for the connection
    window.statusBar().showMessage("")
    shown = [window.windowTitle(), window.database_label.text(), window.database_label.toolTip(),
             window.statusBar().currentMessage()]
    assert all(PASSWORD not in text for text in shown)
    assert server_database.rsplit("/", 1)[-1] in window.windowTitle()
    window.save_settings()
    stored = settings_file.read_text()
    assert server_database in stored and "Pa55" not in stored
    output = capsys.readouterr()
    assert "Pa55" not in output.out + output.err


def test_the_export_dialog_keeps_its_folder_in_the_user_settings(monkeypatch, tmp_path):
    import gui.export_dialog as export_dialog
    from gui.app import last_folder

    ini = tmp_path / "profile.ini"
    monkeypatch.setenv("PAXDESK_SETTINGS", str(ini))
    folder = tmp_path / "exports"
    folder.mkdir()
    QSettings(str(ini), QSettings.Format.IniFormat).setValue(export_dialog.LAST_FOLDER_KEY, str(folder))
    assert last_folder(export_dialog.LAST_FOLDER_KEY) == str(folder)
