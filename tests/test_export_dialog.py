"""The Export dialog and "export current view", driven as a user would: choose, run, watch progress, cancel,
open the result."""

from __future__ import annotations

import threading
from pathlib import Path

import openpyxl
import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QFileDialog

import gui.export_dialog as export_dialog
from gui.app import user_settings
from gui.export_dialog import ExportDialog, export_current_view
from models.queries import RecordQuery


@pytest.fixture(autouse=True)
def private_settings(tmp_path, monkeypatch):
    """Keep the dialog's remembered folder out of the real user settings."""
    monkeypatch.setenv("PAXDESK_SETTINGS", str(tmp_path / "settings.ini"))


@pytest.fixture
def opened(monkeypatch) -> list[QUrl]:
    urls: list[QUrl] = []
    monkeypatch.setattr(export_dialog, "open_url", lambda url: urls.append(url) or True)
    return urls


def test_kind_choice_enables_the_summary_options(qtbot, seeded_db):
    dialog = ExportDialog()
    qtbot.addWidget(dialog)
    assert dialog.kind() == "data" and not dialog.summary_box.isEnabled()
    assert dialog.path_edit.text().endswith(".xlsx") and "paxdesk-data-" in dialog.path_edit.text()
    qtbot.mouseClick(dialog.summary_radio, Qt.MouseButton.LeftButton)
    assert dialog.kind() == "summary" and dialog.summary_box.isEnabled()
    assert "paxdesk-summary-" in dialog.path_edit.text()
    assert dialog.date_combo.itemText(1) == "2024-05-31"
    assert [dialog.contributor_list.item(i).text() for i in range(dialog.contributor_list.count())] == ["Kazakhstan"]
    for check in dialog.summary_checks.values():
        check.setChecked(False)
    assert not dialog.export_button.isEnabled()  # a summary of nothing is not offered
    dialog.summary_checks["personnel"].setChecked(True)
    assert dialog.export_button.isEnabled()


def test_summary_export_runs_with_progress_and_offers_to_open(qtbot, seeded_db, out, opened):
    dialog = ExportDialog()
    qtbot.addWidget(dialog)
    dialog.set_kind("summary")
    for key, check in dialog.summary_checks.items():
        check.setChecked(key in ("personnel", "authorisations"))
    dialog.contributor_list.item(0).setSelected(True)
    dialog.date_combo.setCurrentIndex(1)
    target = out / "summary.xlsx"
    dialog.path_edit.setText(str(target))
    with qtbot.waitSignal(dialog.export_finished, timeout=30_000) as finished:
        qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
        assert dialog.cancel_button.text() == "Cancel" and not dialog.export_button.isEnabled()
    result = finished.args[0]
    assert result.path == target and target.exists()
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum()
    assert "Saved summary.xlsx" in dialog.status_label.text()
    workbook = openpyxl.load_workbook(target)
    assert workbook.sheetnames == ["About", "Personnel", "Authorisations"]
    about = {row[0]: row[1] for row in workbook["About"].iter_rows(values_only=True) if row[0]}
    assert "reporting date 2024-05-31" in about["Filters"] and "contributors Kazakhstan" in about["Filters"]

    qtbot.mouseClick(dialog.open_file_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.open_folder_button, Qt.MouseButton.LeftButton)
    assert [Path(url.toLocalFile()) for url in opened] == [target, out]
    assert user_settings().value(export_dialog.LAST_FOLDER_KEY) == str(out)


def test_data_export_from_the_dialog(qtbot, seeded_db, out):
    dialog = ExportDialog()
    qtbot.addWidget(dialog)
    dialog.path_edit.setText(str(out / "data"))  # the extension is added
    with qtbot.waitSignal(dialog.export_finished, timeout=30_000):
        dialog.start_export()
    assert (out / "data.xlsx").exists()
    assert openpyxl.load_workbook(out / "data.xlsx")["Contributions"].max_row == 6


def test_cancel_writes_nothing_at_the_target(qtbot, seeded_db, out, monkeypatch):
    target = out / "report.xlsx"
    target.write_bytes(b"last month's report")
    cancel_clicked = threading.Event()
    real_run = export_dialog.run_export

    def run_after_cancel(*args):
        cancel_clicked.wait(10)  # the export starts only once the user has pressed Cancel
        return real_run(*args)

    monkeypatch.setattr(export_dialog, "run_export", run_after_cancel)
    dialog = ExportDialog()
    qtbot.addWidget(dialog)
    dialog.set_kind("summary")
    dialog.path_edit.setText(str(target))
    with qtbot.waitSignal(dialog.export_cancelled, timeout=30_000):
        dialog.start_export()
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
        cancel_clicked.set()
    assert "cancelled" in dialog.status_label.text()
    assert dialog.export_button.isEnabled() and dialog.cancel_button.text() == "Close"
    assert target.read_bytes() == b"last month's report"
    assert [p.name for p in out.iterdir()] == ["report.xlsx"]


def test_an_unusable_path_is_reported_in_the_dialog(qtbot, seeded_db, out):
    dialog = ExportDialog()
    qtbot.addWidget(dialog)
    dialog.path_edit.setText(str(out / "missing" / "data.xlsx"))
    with qtbot.waitSignal(dialog.export_failed, timeout=30_000) as failed:
        dialog.start_export()
    assert "does not exist" in failed.args[0]
    assert "does not exist" in dialog.status_label.text()
    assert dialog.export_button.isEnabled()


def test_export_current_view_writes_what_the_table_shows(qtbot, seeded_db, out, monkeypatch):
    query = RecordQuery("contributions", filters={"personnel_type": "staff"}, sort_column="total_count",
                        descending=True)
    target = out / "view.xlsx"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), "Excel"))
    dialog = export_current_view(None, query)
    qtbot.addWidget(dialog)
    assert "Contributions" in dialog.view_label.text() and "2 rows" in dialog.view_label.text()
    with qtbot.waitSignal(dialog.export_finished, timeout=30_000):
        pass
    workbook = openpyxl.load_workbook(target)
    rows = list(workbook["Contributions"].iter_rows(values_only=True))
    assert rows[0][:3] == ("ID", "Reporting date", "Contributing country")
    assert [row[-1] for row in rows[1:]] == [2, 1]  # the view's order: total, descending
    assert all(row[5] == "Staff Officer" for row in rows[1:])  # codes shown by label, as in the table
    metadata = {row[0]: row[1] for row in workbook["Metadata"].iter_rows(values_only=True)}
    assert metadata["Filters"] == "Personnel type contains 'staff'; sorted by Total (descending)"


def test_export_current_view_does_nothing_without_a_file(qtbot, seeded_db, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: ("", ""))
    assert export_current_view(None, RecordQuery("actors")) is None


def test_file_menu_actions_open_the_dialog_and_export_the_view(qtbot, seeded_db, out, monkeypatch):
    from PySide6.QtWidgets import QMainWindow

    from gui.export_dialog import install_export_actions

    class Window(QMainWindow):
        """The two things the export actions need from the main window."""

        def __init__(self):
            super().__init__()
            self.file_menu = self.menuBar().addMenu("&File")

        def add_file_action(self, action):
            self.file_menu.addAction(action)

        def current_query(self):
            return RecordQuery("missions", filters={"acronym": "UNDOF"})

    window = Window()
    qtbot.addWidget(window)
    export_action, view_action = install_export_actions(window)
    assert [a.text() for a in window.file_menu.actions()] == ["&Export…", "Export current &view…"]
    export_action.trigger()
    dialog = window.findChild(ExportDialog)
    assert dialog is not None and dialog.isVisible() and dialog.kind() == "data"
    dialog.close()

    target = out / "missions.xlsx"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *args, **kwargs: (str(target), "Excel"))
    view_action.trigger()
    view_dialog = next(d for d in window.findChildren(ExportDialog) if d.kind() == "view")
    if view_dialog.running():
        with qtbot.waitSignal(view_dialog.export_finished, timeout=30_000):
            pass
    rows = list(openpyxl.load_workbook(target)["Missions"].iter_rows(values_only=True))
    assert len(rows) == 2 and rows[1][1] == "UNDOF"
