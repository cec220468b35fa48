"""The import wizard, driven as a curator would: a UN file from file page to summary, a sheet of any layout
through the mapping page (remembered for next time), the error preview with its report, and Cancel while
writing, which leaves the database as it was."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import openpyxl
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWizard

import gui.import_wizard as wizard_module
from gui.import_wizard import PAGE_MAPPING, PAGE_PREVIEW, PAGE_RUN, ImportPreviewTableModel, ImportWizard
from models import schema
from models.importing import mapping_key
from tests.un_files import un_file as hub_file


def un_file(path: Path, rows: list[tuple]) -> Path:
    return hub_file(path, rows, reporting_date=dt.datetime(2023, 2, 28))

GOOD = [("Kazakhstan", "KAZ", "UNDOF", "Troops", 3, 136), ("Türkiye", "", "UNIFIL", "Troops", 10, 120),
        ("India", "IND", "UNIFIL", "Staff Officer", 2, 8)]


@pytest.fixture
def open_wizard(qtbot):
    wizards = []

    def make(path: Path | None = None) -> ImportWizard:
        wizard = ImportWizard(path=path)
        qtbot.addWidget(wizard)
        wizard.show()
        wizards.append(wizard)
        # The sheets are read in the background; the page says so and cannot go on until they are.
        if path is not None:
            qtbot.waitUntil(lambda: not wizard.file_page.loading, timeout=20_000)
        return wizard

    yield make
    for wizard in wizards:
        wizard.close_source()


def go_to_preview(qtbot, wizard: ImportWizard) -> None:
    wizard.next()
    if wizard.currentId() == PAGE_MAPPING:
        return
    assert wizard.currentId() == PAGE_PREVIEW
    qtbot.waitUntil(lambda: wizard.plan is not None or wizard.preview_page.verdict_label.text() != "", timeout=20_000)


def commit(qtbot, wizard: ImportWizard) -> None:
    assert wizard.button(QWizard.WizardButton.CommitButton).isEnabled()
    qtbot.mouseClick(wizard.button(QWizard.WizardButton.CommitButton), Qt.MouseButton.LeftButton)
    assert wizard.currentId() == PAGE_RUN


def test_a_un_file_goes_from_file_page_to_summary(seeded_db, qtbot, qtmodeltester, open_wizard, tmp_path):
    wizard = open_wizard(un_file(tmp_path / "february.xlsx", GOOD))
    page = wizard.file_page
    assert "UN contributions (data hub columns), 3 rows" in page.format_label.text()
    assert page.isComplete()

    go_to_preview(qtbot, wizard)

    model = wizard.preview_page.model
    qtmodeltester.check(model)
    assert model.rowCount() == 3
    assert [model.index(r, 2).data() for r in range(3)] == ["New", "New", "New"]
    assert model.index(1, 3).data() == "2023-02-28 · Türkiye · UNIFIL · Troops"
    assert "3 new, 0 changed, 0 unchanged, 0 refused" in wizard.preview_page.counts_label.text()
    before = schema.ChangeSet.select().count()

    with qtbot.waitSignal(wizard.imported, timeout=20_000) as imported:
        commit(qtbot, wizard)

    result = imported.args[0]
    assert (result.inserted, result.written) == (3, True)
    assert "3 inserted" in wizard.run_page.status_label.text()
    assert schema.ChangeSet.select().count() == before + 1
    assert wizard.button(QWizard.WizardButton.FinishButton).isEnabled()


def test_the_preview_shows_changes_old_to_new_and_unchanged_rows(seeded_db, qtbot, qtmodeltester, open_wizard,
                                                                    tmp_path):
    from models.importing import import_file

    import_file(un_file(tmp_path / "first.xlsx", GOOD))
    revised = [("Kazakhstan", "KAZ", "UNDOF", "Troops", 5, 136), *GOOD[1:]]
    wizard = open_wizard(un_file(tmp_path / "revised.xlsx", revised))

    go_to_preview(qtbot, wizard)

    model = wizard.preview_page.model
    qtmodeltester.check(model)
    statuses = [model.index(r, 2).data() for r in range(model.rowCount())]
    assert statuses == ["Changed", "Unchanged", "Unchanged"]
    assert model.index(0, 4).data() == "Female: 3 → 5; Total: 139 → 141"
    wizard.preview_page.status_combo.setCurrentIndex(wizard.preview_page.status_combo.findData("update"))
    assert model.rowCount() == 1


def test_errors_are_previewed_block_the_import_and_go_to_a_report(seeded_db, qtbot, qtmodeltester, open_wizard,
                                                                  tmp_path, monkeypatch):
    rows = [*GOOD, ("Tukey", "", "UNIFIL", "Troops", 1, 1), ("Kazakhstan", "KAZ", "UNDOF", "Troop", 1, 1)]
    wizard = open_wizard(un_file(tmp_path / "errors.xlsx", rows))

    go_to_preview(qtbot, wizard)

    page = wizard.preview_page
    qtmodeltester.check(page.model)
    page.status_combo.setCurrentIndex(page.status_combo.findData("error"))
    assert page.model.rowCount() == 2
    assert "No actor called 'Tukey'; closest: Turkey (" in page.model.index(0, 4).data()
    assert "closest: Troops (" in page.model.index(1, 4).data()
    assert not wizard.button(QWizard.WizardButton.CommitButton).isEnabled()
    assert "2 rows are refused, so nothing will be written" in page.verdict_label.text()

    report = tmp_path / "errors-report.xlsx"
    monkeypatch.setattr(wizard_module, "get_save_file_name", lambda *args: (str(report), ""))
    with qtbot.waitSignal(wizard.report_saved) as saved:
        qtbot.mouseClick(page.report_button, Qt.MouseButton.LeftButton)
    assert saved.args[0] == str(report)
    assert openpyxl.load_workbook(report)["Contributions"]["B2"].value == "Tukey"

    # Going back to write the good rows instead:
    wizard.back()
    wizard.file_page.error_combo.setCurrentIndex(wizard.file_page.error_combo.findData("skip"))
    go_to_preview(qtbot, wizard)
    assert wizard.button(QWizard.WizardButton.CommitButton).isEnabled()
    with qtbot.waitSignal(wizard.imported, timeout=20_000) as imported:
        commit(qtbot, wizard)
    assert (imported.args[0].inserted, imported.args[0].rejected) == (3, 2)


def talks(path: Path, headers: list[str], rows: list[list]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Talks"
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_a_sheet_of_any_layout_is_mapped_and_the_mapping_is_offered_again(seeded_db, qtbot, open_wizard, tmp_path):
    headers = ["Round", "Began", "City", "Notes"]
    wizard = open_wizard(talks(tmp_path / "talks.xlsx", headers, [["Astana XXI", "2023-06", "Astana", "last"]]))
    assert "columns to map to fields on the next page" in wizard.file_page.format_label.text()

    go_to_preview(qtbot, wizard)
    assert wizard.currentId() == PAGE_MAPPING
    page = wizard.mapping_page
    page.type_combo.setCurrentIndex(page.type_combo.findData("mediation-events"))
    assert page.combos[3].currentData() == "notes"  # guessed from the header
    assert not page.isComplete() and "Title, Start date" in page.missing_label.text()
    page.combos[0].setCurrentIndex(page.combos[0].findData("title"))
    page.combos[1].setCurrentIndex(page.combos[1].findData("start_date"))
    page.combos[2].setCurrentIndex(page.combos[2].findData("venue_city"))
    assert page.isComplete()

    wizard.next()
    qtbot.waitUntil(lambda: wizard.plan is not None, timeout=20_000)
    assert wizard.preview_page.model.index(0, 3).data() == "Astana XXI"
    with qtbot.waitSignal(wizard.imported, timeout=20_000):
        commit(qtbot, wizard)
    event = schema.MediationEvent.get(schema.MediationEvent.title == "Astana XXI")
    assert (event.start_date, event.venue_city, event.notes) == ("2023-06", "Astana", "last")
    assert schema.Setting.get_or_none(schema.Setting.key == mapping_key(headers)) is not None

    again = open_wizard(talks(tmp_path / "talks_july.xlsx", ["city", "began", "round", "notes"],
                              [["Astana", "2023-07", "Astana XXII", ""]]))
    assert "Mediation events, with the mapping saved for these columns" in again.file_page.format_label.text()
    again.next()
    assert again.currentId() == PAGE_MAPPING
    chosen = {combo.currentData() for combo in again.mapping_page.combos}
    assert chosen == {"venue_city", "start_date", "title", "notes"}


def test_cancel_while_writing_leaves_the_database_as_it_was(seeded_db, qtbot, open_wizard, tmp_path, monkeypatch):
    import pycountry

    countries = [c.alpha_3 for c in pycountry.countries][:150]
    rows = [("", code, mission, kind, 1, 2) for code in countries for mission in ("UNDOF", "UNIFIL")
            for kind in ("Troops", "Staff Officer")]
    wizard = open_wizard(un_file(tmp_path / "many.xlsx", rows))
    go_to_preview(qtbot, wizard)
    before = (schema.Contribution.select().count(), schema.ChangeSet.select().count())
    # Hold the worker after its first written chunk until Cancel is pressed, so the test does not race it.
    real_apply, gate = wizard_module.apply_plan, threading.Event()

    def held_apply(plan, progress):
        report = progress.report

        def hold(done: int, total: int, message: str = "") -> None:
            report(done, total, message)
            if message.startswith("Writing"):
                gate.wait(10)

        progress.report = hold
        return real_apply(plan, progress)

    monkeypatch.setattr(wizard_module, "apply_plan", held_apply)
    monkeypatch.setattr("models.import_writing.WRITE_CHUNK", 100)

    commit(qtbot, wizard)
    page = wizard.run_page
    qtbot.waitUntil(lambda: "Writing" in page.status_label.text(), timeout=20_000)
    with qtbot.waitSignal(wizard.import_cancelled, timeout=20_000):
        qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
        gate.set()

    assert page.status_label.text() == "Cancelled: nothing was written."
    assert (schema.Contribution.select().count(), schema.ChangeSet.select().count()) == before
    assert wizard.result is None


def test_a_refused_file_is_explained_on_the_first_page(db, qtbot, open_wizard, tmp_path):
    (tmp_path / "notes.xlsx").write_text("not a workbook")
    wizard = open_wizard(tmp_path / "notes.xlsx")

    assert "not an Excel workbook" in wizard.file_page.problem_label.text()
    assert not wizard.file_page.isComplete()


def test_the_sheets_are_read_in_the_background_with_a_busy_indicator(seeded_db, qtbot, open_wizard, tmp_path):
    wizard = open_wizard()
    page = wizard.file_page
    path = un_file(tmp_path / "february.xlsx", GOOD)
    page.path_edit.setText(str(path))
    with qtbot.waitSignal(page.loaded, timeout=20_000):
        page.load(str(path))
        # load() returned at once: the GUI stays responsive, shows that it is reading, and cannot go on yet
        assert page.loading and page.busy_bar.isVisible()
        assert "Reading the workbook" in page.format_label.text()
        assert not page.isComplete()
    assert not page.busy_bar.isVisible()
    assert page.isComplete() and "3 rows" in page.format_label.text()


def test_the_preview_model_passes_the_model_tester_empty(qtmodeltester):
    qtmodeltester.check(ImportPreviewTableModel())


def test_file_import_in_the_main_window_is_one_undo_step(seeded_db, db_target, qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    from gui.app import create_application
    from gui.main_window import MainWindow

    create_application()
    window = MainWindow(db_target, settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    action = next(a for a in window.file_menu.actions() if a.text() == "&Import…")
    opened: list[ImportWizard] = []
    show = ImportWizard.show
    monkeypatch.setattr(ImportWizard, "show", lambda self: (opened.append(self), show(self)))
    action.trigger()
    wizard = opened[0]
    wizard.file_page.path_edit.setText(str(un_file(tmp_path / "february.xlsx", GOOD)))
    with qtbot.waitSignal(wizard.file_page.loaded, timeout=20_000):
        wizard.file_page.load(wizard.file_page.path_edit.text())
    go_to_preview(qtbot, wizard)
    before = schema.Contribution.select().count()

    with qtbot.waitSignal(wizard.imported, timeout=20_000):
        commit(qtbot, wizard)

    assert schema.Contribution.select().count() == before + 3
    assert window.undo_action.isEnabled() and "Import february.xlsx" in window.undo_action.text()
    window.undo_action.trigger()
    assert schema.Contribution.select().count() == before
    wizard.close_source()
    window.close()


def test_the_wizard_remembers_the_workbook_folder_in_the_user_settings(seeded_db, open_wizard, tmp_path,
                                                                       monkeypatch):
    from gui.app import last_folder
    from gui.import_wizard import LAST_FOLDER_KEY

    profile = tmp_path / "profile.ini"
    monkeypatch.setenv("PAXDESK_SETTINGS", str(profile))  # a throw-away profile: the user's own stays untouched
    folder = tmp_path / "from-the-un"
    folder.mkdir()
    open_wizard(un_file(folder / "february.xlsx", GOOD))
    assert last_folder(LAST_FOLDER_KEY) == str(folder)
    assert "from-the-un" in profile.read_text()
