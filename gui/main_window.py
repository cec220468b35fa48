"""The PaxDesk main window: sidebar of record types, the table of the chosen type with search and column
filters, the record form beside it, menus, toolbar and status bar; window layout kept in QSettings."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QItemSelectionModel, QModelIndex, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from gui.app import icon, user_settings
from gui.change_watcher import ChangeWatcher
from gui.export_dialog import install_export_actions
from gui.filter_header import FilterHeader
from gui.import_wizard import install_import_action
from gui.open_server_dialog import OpenServerDialog, probe
from gui.record_form import RecordForm
from gui.record_table import RecordTableView
from gui.sidebar import Sidebar
from gui.table_model import RecordTableModel
from gui.undo import ChangeSetCommand, undo_actions, undo_notifier
from models import __version__, schema, services
from models.changes import Change
from models.db import DatabaseUnavailable, backup_database, describe_target, is_url, open_database
from models.dialect import READ_ERRORS, first_line, is_sqlite
from models.queries import RecordQuery, columns
from models.records import RECORD_TYPES, record_type
from models.seeding import SeedError, seed_database

DEFAULT_VIEW = "mediation-events"
DEFAULT_SIZE = (1280, 800)
RECENT_LIMIT = 8
SEARCH_DELAY_MS = 250
MAX_DEFAULT_COLUMN_WIDTH = 320


class MainWindow(QMainWindow):
    """Open with the database the models are bound to (`target` names it for the title and recent list)."""

    view_changed = Signal(str)  # the record type key now shown
    database_changed = Signal(str)  # another database was opened; its description

    def __init__(self, target: str, *, settings: QSettings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self._settings = settings if settings is not None else user_settings()
        self._target = target
        self._key: str | None = None
        self._view_filters: dict[str, tuple[str, dict[str, str]]] = {}  # per view, this session
        self._select_after_load: int | None = None
        self._own_change_sets: set[int] = set()
        # Server URLs opened this session with a typed password, by their password-free form: the window
        # can go back to such a database after a failed switch. Memory only, never settings or logs.
        self._connect_urls: dict[str, str] = {}
        self.server_dialog: OpenServerDialog | None = None
        self.setObjectName("MainWindow")
        self.undo_stack = QUndoStack(self)
        self.model = RecordTableModel(DEFAULT_VIEW, self)
        self.watcher = ChangeWatcher(parent=self)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_central()
        self._build_status_bar()
        self._connect()
        install_import_action(self)  # File → Import…: the import wizard, one undo step, table refreshed
        install_export_actions(self)  # File → Export… and File → Export current view…
        self.resize(*DEFAULT_SIZE)
        self._restore_window()
        self._database_opened()
        last = str(self._settings.value("window/lastView", DEFAULT_VIEW))
        self.show_view(last if last in RECORD_TYPES else DEFAULT_VIEW)

    # --- construction -----------------------------------------------------------------------------
    def _action(self, text: str, slot, *, icon_name: str = "", shortcut: QKeySequence | str | None = None,
                tip: str = "") -> QAction:
        action = QAction(icon(icon_name) if icon_name else QIcon(), text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(f"{tip} ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                              if shortcut is not None else tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        Key = QKeySequence.StandardKey
        self.new_database_action = self._action("&New database…", self.new_database, icon_name="new-database",
                                                shortcut="Ctrl+Shift+N",
                                                tip="Create a database with the reference data")
        self.open_action = self._action("&Open…", self.open_database_dialog, icon_name="open",
                                        shortcut=Key.Open, tip="Open another PaxDesk database")
        self.open_server_action = self._action("Open &server database…", self.open_server_dialog,
                                               icon_name="open", shortcut="Ctrl+Shift+O",
                                               tip="Open a PaxDesk database on a PostgreSQL server")
        self.backup_action = self._action("&Back up…", self.back_up, icon_name="backup",
                                          tip="Save a copy of the database")
        # Not every desktop defines a Quit key; Ctrl+Q is what people expect there.
        quit_key = QKeySequence(Key.Quit) if not QKeySequence(Key.Quit).isEmpty() else QKeySequence("Ctrl+Q")
        self.quit_action = self._action("&Quit", self.close, icon_name="quit", shortcut=quit_key)
        self.new_action = self._action("&New", self.new_record, icon_name="new", shortcut=Key.New,
                                       tip="New record of the shown type")
        self.duplicate_action = self._action("D&uplicate", self.duplicate_record, icon_name="duplicate",
                                             shortcut="Ctrl+D", tip="Copy the shown record into a new one")
        self.delete_action = self._action("&Delete…", self.delete_selected, icon_name="delete",
                                          shortcut=Key.Delete, tip="Delete the selected record")
        # The table's Delete key, not the form's: a Delete pressed in a text box deletes text.
        self.delete_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.undo_action, self.redo_action = undo_actions(self.undo_stack, self)
        self.undo_action.setIcon(icon("undo"))
        self.redo_action.setIcon(icon("redo"))
        self.find_action = self._action("&Find", self.focus_search, icon_name="find", shortcut=Key.Find,
                                        tip="Search the shown records")
        self.clear_filters_action = self._action("Clear search and &filters", self.clear_filters,
                                                 icon_name="clear-filter", shortcut="Ctrl+Shift+F",
                                                 tip="Show every record of this type")
        self.about_action = self._action("&About PaxDesk", self.about, icon_name="about")

    def _build_menus(self) -> None:
        bar = self.menuBar()
        self.file_menu = bar.addMenu("&File")
        self.file_menu.addActions([self.new_database_action, self.open_action, self.open_server_action])
        self.recent_menu = self.file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.file_menu.addAction(self.backup_action)
        # Import and export actions are added here by add_file_action(), between these two separators.
        self._file_section_start = self.file_menu.addSeparator()
        self._file_section_end = self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)
        self.edit_menu = bar.addMenu("&Edit")
        self.edit_menu.addActions([self.new_action, self.duplicate_action, self.delete_action])
        self.edit_menu.addSeparator()
        self.edit_menu.addActions([self.undo_action, self.redo_action])
        self.edit_menu.addSeparator()
        self.edit_menu.addActions([self.find_action, self.clear_filters_action])
        self.help_menu = bar.addMenu("&Help")
        self.help_menu.addAction(self.about_action)

    def _build_toolbar(self) -> None:
        toolbar = QToolBar("Main toolbar", self)
        toolbar.setObjectName("MainToolBar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addActions([self.new_action, self.duplicate_action, self.delete_action])
        toolbar.addSeparator()
        toolbar.addActions([self.undo_action, self.redo_action])
        toolbar.addSeparator()
        toolbar.addAction(self.open_action)
        self.toolbar = toolbar
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)

    def _build_central(self) -> None:
        self.sidebar = Sidebar(self)

        centre = QWidget(self)
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.setSpacing(0)
        header = QWidget(centre)
        header.setObjectName("ViewHeader")
        header_layout = QHBoxLayout(header)
        header_layout.setContentsMargins(16, 12, 12, 12)
        header_layout.setSpacing(12)
        titles = QVBoxLayout()
        titles.setSpacing(2)
        self.title_label = QLabel(header)
        self.title_label.setObjectName("ViewTitle")
        self.description_label = QLabel(header)
        self.description_label.setObjectName("ViewDescription")
        # Long titles and descriptions may be cut rather than widen the window past the screen.
        for label in (self.title_label, self.description_label):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            label.setMinimumWidth(120)
        self.description_label.setWordWrap(True)
        titles.addWidget(self.title_label)
        titles.addWidget(self.description_label)
        header_layout.addLayout(titles, 1)
        self.search_box = QLineEdit(header)
        self.search_box.setObjectName("SearchBox")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.addAction(icon("find"), QLineEdit.ActionPosition.LeadingPosition)
        self.search_box.setMinimumWidth(240)
        self.search_box.setAccessibleName("Search")
        header_layout.addWidget(self.search_box, 0, Qt.AlignmentFlag.AlignVCenter)
        centre_layout.addWidget(header)

        self.table = RecordTableView(centre)
        self.table.setObjectName("RecordTable")
        self.filter_header = FilterHeader(self.table)
        self.table.setHorizontalHeader(self.filter_header)
        self.table.setModel(self.model)
        self.filter_header.setSortIndicatorShown(True)
        self.filter_header.setResizeContentsPrecision(60)
        self.table.addAction(self.delete_action)
        centre_layout.addWidget(self.table, 1)

        self.form = RecordForm(self.undo_stack, self)
        self.form.setObjectName("FormPanel")
        self.form.setMinimumWidth(360)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("MainSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.sidebar)
        self.splitter.addWidget(centre)
        self.splitter.addWidget(self.form)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
        self.setCentralWidget(self.splitter)

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.database_label = QLabel(self)
        self.database_label.setObjectName("DatabaseStatus")
        self.count_label = QLabel(self)
        self.count_label.setObjectName("CountStatus")
        self.filter_label = QLabel(self)
        self.filter_label.setObjectName("FilterStatus")
        status.addWidget(self.database_label, 1)
        status.addPermanentWidget(self.filter_label)
        status.addPermanentWidget(self.count_label)

    def _connect(self) -> None:
        self.sidebar.view_selected.connect(self._view_selected)
        self.search_box.textEdited.connect(lambda _text: self._search_timer.start())
        self.search_box.returnPressed.connect(self._apply_search)
        self._search_timer.timeout.connect(self._apply_search)
        self.filter_header.filters_changed.connect(self._apply_filters)
        self.filter_header.sortIndicatorChanged.connect(self._sort_changed)
        self.model.modelReset.connect(self._rows_reset)
        self.model.loaded.connect(self._rows_loaded)
        self.model.failed.connect(self._table_failed)
        self.table.selectionModel().currentRowChanged.connect(self._current_row_changed)
        self.table.doubleClicked.connect(lambda _index: self.form.setFocus())
        self.form.record_saved.connect(self._record_saved)
        self.form.record_deleted.connect(self._record_deleted)
        self.form.dirty_changed.connect(self._update_actions)
        undo_notifier.data_changed.connect(self._data_changed_by_undo)
        # Bound slots only on the process-wide notifier: a lambda would outlive this window.
        undo_notifier.refused.connect(self._undo_refused)
        self.undo_stack.indexChanged.connect(self._note_own_change_sets)
        self.watcher.changes_arrived.connect(self._changes_arrived)
        self.watcher.connection_lost.connect(lambda message: self.statusBar().showMessage(message))
        self.watcher.connection_restored.connect(lambda: self.statusBar().showMessage("Connected again.", 5000))

    # --- places other features plug into ---------------------------------------------------------
    def add_file_action(self, action: QAction) -> None:
        """Put an Import…/Export… action in the File menu, above Quit (in the order they are added)."""
        self.file_menu.insertAction(self._file_section_end, action)

    @property
    def current_key(self) -> str | None:
        return self._key

    def current_query(self) -> RecordQuery:
        """The shown view as a query (type, search, column filters, sort): what "Export current view" writes."""
        return self.model.query

    @property
    def target(self) -> str:
        return self._target

    @Slot()
    def refresh(self) -> None:
        """Read the shown view and the counts again, keeping the selected record (after an import, say)."""
        self._select_after_load = self.selected_record_id()
        if self._read(self.model.reload):
            self._refresh_counts()

    def _read(self, work: Callable[[], object]) -> bool:
        """Run a read for the window (the table's rows, the sidebar's counts), then say in the status bar what
        the table shows (a slow search, filter or sort is read in the background: "Reading…" until its rows
        come). When the database cannot be read, say so and keep showing what was shown. False when it failed."""
        try:
            work()
        except READ_ERRORS as exc:
            self._table_failed(first_line(exc))
            return False
        finally:
            self._update_status()
        return True

    @Slot(str)
    def _table_failed(self, message: str) -> None:
        # Kept until the next message: a curator looking at a stale table must be able to see why.
        self.statusBar().showMessage(f"Cannot read the table: {message}")

    # --- views ------------------------------------------------------------------------------------
    def show_view(self, key: str) -> None:
        """Show the table of record type `key` (raises KeyError for an unknown key)."""
        record_type(key)
        if self.sidebar.current_key != key:
            self.sidebar.select(key)  # comes back through _view_selected
        elif self._key != key:
            self._view_selected(key)

    @Slot(str)
    def _view_selected(self, key: str) -> None:
        if key == self._key:
            return
        if not self.form.confirm_discard():
            self._mark_in_sidebar(self._key)
            return
        previous = self.model.query
        self._select_after_load = None
        if self._key is not None:
            # Before the model changes: the header then takes the next view's columns, and drops the columns
            # that view lacks together with their widths.
            self._save_view_layout(self._key)
            self._view_filters[self._key] = (self.search_box.text(), self.filter_header.values())
        search, filters = self._view_filters.get(key, ("", {}))
        sort_column, descending = self._saved_sort(key)
        try:
            self.model.set_record_type(key, search=search, filters=filters, sort_column=sort_column,
                                       descending=descending)
        except READ_ERRORS as exc:
            self._table_failed(first_line(exc))
            self._keep_view(previous)
            return
        self._key = key
        spec = record_type(key)
        self.title_label.setText(spec.label)
        self.description_label.setText(spec.description)
        self.search_box.setText(search)
        self.search_box.setPlaceholderText(f"Search {spec.label.lower()}…")
        shown = self.model.columns
        self.filter_header.set_columns([c.name for c in shown], [c.label for c in shown], filters)
        self._restore_view_layout(key)
        self._settings.setValue("window/lastView", key)
        self.select_first_row()
        self._update_status()
        self._update_actions()
        self.view_changed.emit(key)

    def _keep_view(self, query: RecordQuery) -> None:
        """After a view could not be read: the model and the sidebar go back to the view still on screen."""
        try:  # sets the model's query back first, then reads; the rows on screen are the old view's anyway
            self.model.set_record_type(query.key, search=query.search, filters=query.filters,
                                       sort_column=query.sort_column, descending=query.descending)
        except READ_ERRORS:
            pass
        if self._key is not None:
            self._mark_in_sidebar(self._key)

    def _mark_in_sidebar(self, key: str | None) -> None:
        """Mark `key` in the sidebar without switching to it (the sidebar's signal would)."""
        self.sidebar.blockSignals(True)
        self.sidebar.select(key)
        self.sidebar.blockSignals(False)

    def select_first_row(self) -> None:
        """Select the first record of the view (the form shows it); the form shows a new record if none."""
        if self.model.rowCount() > 0:
            self.select_row(0)
        else:
            self.table.selectionModel().clearSelection()
            self.form.load(self._key, None)

    def select_row(self, row: int) -> None:
        index = self.model.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(index)

    def select_record(self, record_id: int) -> bool:
        """Select the row of `record_id` (now, or once the view's ids are read); False if it is not shown."""
        row = self.model.row_of(record_id)
        if row >= 0:
            self.select_row(row)
            return True
        if not self.model.is_complete:
            self._select_after_load = record_id
        return False

    def selected_record_id(self) -> int | None:
        index = self.table.selectionModel().currentIndex()
        return self.model.record_id(index.row()) if index.isValid() else None

    @Slot(QModelIndex, QModelIndex)
    def _current_row_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        record_id = self.model.record_id(current.row()) if current.isValid() else None
        if record_id is None or (self.form.record_key == self._key and self.form.record_id == record_id):
            self._update_actions()
            return
        if not self.form.confirm_discard():
            # Stay on the record being edited: put the selection back without asking again.
            selection = self.table.selectionModel()
            selection.blockSignals(True)
            if previous.isValid():
                selection.setCurrentIndex(previous, QItemSelectionModel.SelectionFlag.ClearAndSelect
                                          | QItemSelectionModel.SelectionFlag.Rows)
            else:
                selection.clearSelection()
            selection.blockSignals(False)
            self.table.viewport().update()
            return
        self.form.load(self._key, record_id)
        self._update_actions()

    @Slot()
    def _rows_reset(self) -> None:
        # A new search, filter or sort: keep the record the form shows selected if the view still has it.
        wanted = self._select_after_load
        if wanted is None and self.form.record_key == self.model.key:
            wanted = self.form.record_id
        if wanted is not None:
            QTimer.singleShot(0, lambda: self._reselect(wanted))
        # The header shows the sort the rows have, however it was set (a click, a saved layout, code).
        section, order = self.model.sort_section()
        if (self.filter_header.sortIndicatorSection(), self.filter_header.sortIndicatorOrder()) != (section, order):
            self.filter_header.blockSignals(True)
            self.filter_header.setSortIndicator(section, order)
            self.filter_header.blockSignals(False)
            self.filter_header.viewport().update()
        self._update_status()

    def _reselect(self, record_id: int) -> None:
        if self.select_record(record_id):
            self._select_after_load = None

    @Slot()
    def _rows_loaded(self) -> None:
        if self._select_after_load is not None and self.select_record(self._select_after_load):
            self._select_after_load = None
        self._update_status()

    # --- search, filters, sort --------------------------------------------------------------------
    @Slot()
    def _apply_search(self) -> None:
        self._search_timer.stop()
        self._read(lambda: self.model.set_search(self.search_box.text().strip()))

    @Slot(dict)
    def _apply_filters(self, filters: dict) -> None:
        self._read(lambda: self.model.set_filters(filters))

    @Slot(int, Qt.SortOrder)
    def _sort_changed(self, section: int, order: Qt.SortOrder) -> None:
        self._read(lambda: self.model.sort(section, order))

    @Slot()
    def focus_search(self) -> None:
        self.search_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_box.selectAll()

    @Slot()
    def clear_filters(self) -> None:
        self.search_box.clear()
        self.filter_header.blockSignals(True)
        self.filter_header.clear_filters()
        self.filter_header.blockSignals(False)
        self._read(lambda: (self.model.set_filters({}), self.model.set_search("")))

    # --- records ----------------------------------------------------------------------------------
    @Slot()
    def new_record(self) -> None:
        if self._key is None or not self.form.confirm_discard():
            return
        selection = self.table.selectionModel()
        selection.blockSignals(True)
        selection.clearSelection()
        selection.setCurrentIndex(QModelIndex(), QItemSelectionModel.SelectionFlag.NoUpdate)
        selection.blockSignals(False)
        self.form.load(self._key, None)
        self._update_actions()

    @Slot()
    def duplicate_record(self) -> None:
        if self.form.record_key is not None:
            self.form.duplicate()
            self.table.selectionModel().clearSelection()
            self._update_actions()

    @Slot()
    def delete_selected(self) -> bool:
        """Ask, then delete the selected record undoably; refuse, naming them, while other records use it."""
        record_id = self.selected_record_id()
        if self._key is None or record_id is None:
            return False
        spec = record_type(self._key)
        stored = services.snapshot(spec.model, record_id)
        if stored is None:
            self.refresh()
            return False
        label = services.record_label(spec, stored)
        referrers = services.references_to(spec, record_id)
        if referrers:  # say so before asking: a Yes that then fails would waste the curator's time
            self._refuse_delete(spec.singular, label, "; ".join(referrers))
            return False
        answer = QMessageBox.question(
            self, f"Delete {spec.singular}",
            f"Delete the {spec.singular} ‘{label}’?\n\nEdit › Undo brings it back.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        text = f"Delete {spec.singular} ‘{label}’"
        row = self.table.selectionModel().currentIndex().row()
        try:
            with services.recording("delete", text) as recorder:
                services.delete_record(self._key, record_id, expected_version=stored["version"], recorder=recorder)
        except services.StillReferenced as exc:  # someone else made a record point to it meanwhile
            self._refuse_delete(spec.singular, label, str(exc))
            return False
        except services.RecordRefused as exc:
            QMessageBox.warning(self, f"{spec.singular.capitalize()} not deleted", str(exc))
            self.refresh()
            return False
        self._own_change_sets.add(recorder.change_set.id)
        self.undo_stack.push(ChangeSetCommand(text, recorder.change_set.id))
        self._after_delete(row)
        self.statusBar().showMessage(f"Deleted {spec.singular} ‘{label}’. Edit › Undo brings it back.", 8000)
        return True

    def _refuse_delete(self, singular: str, label: str, reason: str) -> None:
        QMessageBox.warning(
            self, f"Cannot delete this {singular}",
            f"The {singular} ‘{label}’ cannot be deleted while other records use it.\n\n{reason}\n\n"
            "Change or delete those records first.")

    def _after_delete(self, row: int) -> None:
        self._select_after_load = None
        self.model.reload()
        self._refresh_counts()
        if self.model.rowCount():
            self.select_row(min(row, self.model.rowCount() - 1))
        else:
            self.form.load(self._key, None)

    @Slot(str, int)
    def _record_saved(self, key: str, record_id: int) -> None:
        self._select_after_load = record_id if key == self._key else None
        if key == self._key:
            self.model.reload()
            self.select_record(record_id)
        self._refresh_counts()
        self._update_actions()

    @Slot(str, int)
    def _record_deleted(self, key: str, record_id: int) -> None:
        if key == self._key:
            row = max(self.model.row_of(record_id), 0)
            self._after_delete(row)
        else:
            self._refresh_counts()

    @Slot()
    def _data_changed_by_undo(self) -> None:
        self.refresh()

    @Slot(str)
    def _undo_refused(self, message: str) -> None:
        self.statusBar().showMessage(message, 10_000)

    @Slot()
    def _note_own_change_sets(self) -> None:
        for position in range(self.undo_stack.count()):
            command = self.undo_stack.command(position)
            if isinstance(command, ChangeSetCommand):
                self._own_change_sets.add(command.applied_change_set)
        self._update_actions()

    @Slot(list)
    def _changes_arrived(self, changes: list) -> None:
        """Other people's saves: re-read only what shows them (the table, the counts, a clean form)."""
        self._note_own_change_sets()
        foreign: list[Change] = [change for change in changes if change.change_set_id not in self._own_change_sets]
        if not foreign:
            return
        self._refresh_counts({change.record_type for change in foreign})
        if self._key is not None and any(concerns(self._key, change) for change in foreign):
            self._select_after_load = self.selected_record_id()
            self._read(self.model.reload)
        message = self._form_after_changes(foreign)
        if message is None:
            people = sorted({change.user for change in foreign})
            message = f"Updated with changes by {', '.join(people)}."
        self.statusBar().showMessage(message, 10_000)

    def _form_after_changes(self, foreign: list[Change]) -> str | None:
        """Bring the form up to date with other people's saves without ever touching unsaved edits; a
        message for the status bar when the record it shows was itself changed."""
        key, record_id = self.form.record_key, self.form.record_id
        if key is None:
            self.form.refresh_from_database()  # e.g. someone brought back the record deleted here
            return None
        own = [c for c in foreign if c.record_type == key and c.record_id in (record_id, None)
               and record_id is not None]
        related = any(concerns(key, change, links=True) for change in foreign)
        if not own:
            if related and not self.form.has_unsaved_changes():
                self.form.refresh_from_database()  # names in its reference boxes may have changed
            return None
        spec = record_type(key)
        people = ", ".join(sorted({change.user for change in own}))
        deleted = any(change.action == "delete" for change in own)
        what = "deleted" if deleted else "changed"
        if not self.form.has_unsaved_changes():
            self.form.refresh_from_database()
            return f"The shown {spec.singular} was {what} by {people}."
        # The form's own banner, as after a refused save: Reload there drops the edits for the stored record.
        self.form.show_banner(
            f"{people} {what} this {spec.singular} while you were editing it. Your changes are not saved; "
            + ("saving them will be refused." if deleted else "Reload shows theirs (and drops yours)."),
            offer_reload=True)
        return f"The shown {spec.singular} was {what} by {people}; your unsaved changes are kept."

    # --- databases --------------------------------------------------------------------------------
    @Slot()
    def new_database(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "New PaxDesk database", str(self._default_folder()
                                              / "paxdesk.sqlite3"), "PaxDesk databases (*.sqlite3 *.db)")
        if path:
            if Path(path).exists():
                QMessageBox.warning(self, "New database", f"{path} already exists; choose a new name.")
                return
            self.open_target(path, seed=True)

    @Slot()
    def open_database_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open PaxDesk database", str(self._default_folder()),
                                              "PaxDesk databases (*.sqlite3 *.db);;All files (*)")
        if path:
            self.open_target(path)

    @Slot()
    def open_server_dialog(self, url: str = "", message: str = "") -> bool:
        """Ask for a postgresql:// URL (and a password for this connection only) and open it; problems are
        shown in the dialog, which stays open until a database opens or the curator cancels."""
        if not self.form.confirm_discard():
            return False
        if not url and is_url(self._target):
            url = self._target  # most often another database on the same server
        dialog = OpenServerDialog(self._open_server_url, url=url, message=message, parent=self)
        self.server_dialog = dialog
        try:
            return dialog.exec() == OpenServerDialog.DialogCode.Accepted
        finally:
            self.server_dialog = None
            dialog.deleteLater()

    def _open_server_url(self, url: str) -> str | None:
        """The dialog's opener: switch to `url` (password included, if typed); None or why not. The dialog has
        just heard the server answer, off the GUI thread."""
        return self._switch_database(url, probed=True)

    def open_target(self, target: str, *, seed: bool = False) -> bool:
        """Switch to another database; on failure say why and stay on the current one (a server database
        that refuses is offered again in the Open server database dialog, e.g. to type its password)."""
        if not self.form.confirm_discard():
            return False
        error = self._switch_database(target, seed=seed)
        if error is None:
            return True
        if is_url(target) and target.startswith(("postgresql://", "postgres://")):
            self.open_server_dialog(describe_target(target), error)
        else:
            QMessageBox.warning(self, "Cannot open the database", error)
        return False

    def _switch_database(self, target: str, *, seed: bool = False, probed: bool = False) -> str | None:
        """Open `target` in place of the current database: None when done, else why not (the current
        database is then open again). The caller has asked about unsaved changes, and `probed` when it has
        just heard the server answer."""
        if not probed and is_url(target) and not target.startswith("sqlite:///"):
            # Ask the server first: if it does not answer, the current database is left alone entirely.
            problem = probe(self._connect_url(target))
            if problem is not None:
                return problem
        previous = self._connect_url(self._target)
        self.model.cancel_loading()
        self.watcher.stop()
        schema.database.obj.close()
        try:
            open_database(self._connect_url(target))
            if seed or not schema.Actor.select().exists():
                seed_database()
        except (DatabaseUnavailable, SeedError) as exc:
            try:
                open_database(previous)
            except DatabaseUnavailable as again:  # the old server went away meanwhile: say both
                self._table_failed(first_line(again))
                return f"{exc}\n\nThe database open before could not be opened again either: {first_line(again)}"
            self.watcher.start()
            self.refresh()
            return str(exc)
        if is_url(target) and describe_target(target) != target:
            self._connect_urls[describe_target(target)] = target  # password in memory, for going back
        self._target = describe_target(target) if is_url(target) else target
        self.undo_stack.clear()
        self._own_change_sets.clear()
        self._view_filters.clear()
        self._database_opened()
        key, self._key = self._key or DEFAULT_VIEW, None
        self._view_selected(key)
        self.database_changed.emit(describe_target(target))
        return None

    def _database_opened(self) -> None:
        self._remember_recent(self._target)
        self.setWindowTitle(f"{self._display_name()} — PaxDesk")
        self.database_label.setText(f"Database: {describe_target(self._target)}")
        self.database_label.setToolTip(describe_target(self._target))
        self.watcher.start()
        self._refresh_counts()

    def _connect_url(self, target: str) -> str:
        """What to connect to for a target shown without its password: the URL with it, if one was typed."""
        return self._connect_urls.get(target, target)

    def _display_name(self) -> str:
        return describe_target(self._target) if is_url(self._target) else Path(self._target).name

    def _default_folder(self) -> Path:
        if not is_url(self._target):
            return Path(self._target).expanduser().resolve().parent
        return Path.home()

    @Slot()
    def back_up(self) -> None:
        database = schema.database.obj
        if not is_sqlite(database):
            QMessageBox.information(self, "Back up", "A server database is backed up by its administrator.")
            return
        source = Path(database.database)
        stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M")
        suggested = source.with_name(f"{source.stem}-backup-{stamp}{source.suffix}")
        path, _ = QFileDialog.getSaveFileName(self, "Back up the database", str(suggested),
                                              "PaxDesk databases (*.sqlite3 *.db)")
        if not path:
            return
        try:
            copy = backup_database(database, reason="backup")
            shutil.move(str(copy), path)
        except OSError as exc:
            QMessageBox.warning(self, "Back up", f"The backup could not be written: {exc.strerror or exc}")
            return
        self.statusBar().showMessage(f"Backed up to {path}", 8000)

    def _recent(self) -> list[str]:
        value = self._settings.value("recentDatabases", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _remember_recent(self, target: str) -> None:
        # Never a password in the settings file: a URL is kept without it, and libpq finds it again in
        # PGPASSWORD or ~/.pgpass when the database is reopened from this list.
        entry = describe_target(target) if is_url(target) else str(Path(target).expanduser().resolve())
        recent = [entry] + [item for item in self._recent() if item != entry]
        self._settings.setValue("recentDatabases", recent[:RECENT_LIMIT])

    @Slot()
    def _fill_recent_menu(self) -> None:
        menu: QMenu = self.recent_menu
        menu.clear()
        current = self._recent()[:1]
        for target in self._recent():
            action = menu.addAction(describe_target(target))
            missing = not is_url(target) and not Path(target).exists()
            action.setEnabled(not missing and target not in current)
            if missing:
                action.setText(f"{describe_target(target)} (missing)")
            action.triggered.connect(lambda _checked=False, t=target: self.open_target(t))
        if menu.isEmpty():
            menu.addAction("No recent databases").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear menu", lambda: self._settings.setValue("recentDatabases", current))

    # --- status -----------------------------------------------------------------------------------
    def _refresh_counts(self, keys: set[str] | None = None) -> None:
        """Count the records of `keys` (every type by default) for the sidebar."""
        wanted = [key for key in RECORD_TYPES if keys is None or key in keys]
        self._read(lambda: self.sidebar.set_counts({key: RecordQuery(key).count() for key in wanted}))

    def _update_status(self) -> None:
        if self._key is None:
            return
        spec = record_type(self._key)
        shown = self.model.rowCount()
        noun = spec.singular if shown == 1 else spec.label.lower()
        query = self.model.query
        filtered = bool(query.search or query.filters)
        if not self.model.is_complete:
            # A large view reading its new search, filter or sort still shows the rows of the previous one.
            text = f"{shown:,}+ {spec.label.lower()}, counting…" if self.model.is_current else \
                f"Reading {spec.label.lower()}…"
        elif filtered and self.sidebar.count(self._key) is not None:
            text = f"{shown:,} of {self.sidebar.count(self._key):,} {spec.label.lower()}"
        else:
            text = f"{shown:,} {noun}"
        self.count_label.setText(text)
        self.filter_label.setText(self.filter_description())
        active = filtered
        if self.filter_label.property("active") != active:
            self.filter_label.setProperty("active", active)
            self.filter_label.style().unpolish(self.filter_label)
            self.filter_label.style().polish(self.filter_label)

    def filter_description(self) -> str:
        query = self.model.query
        parts = [f"search “{query.search}”"] if query.search else []
        labels = {column.name: column.label for column in self.model.columns}
        parts += [f"{labels.get(name, name)} contains “{text}”" for name, text in query.filters.items()]
        return "Filter: " + " · ".join(parts) if parts else "No filter"

    @Slot()
    def _update_actions(self) -> None:
        has_row = self.selected_record_id() is not None
        self.delete_action.setEnabled(has_row)
        self.duplicate_action.setEnabled(self.form.record_key is not None)
        self.backup_action.setEnabled(is_sqlite(schema.database.obj))

    # --- settings ---------------------------------------------------------------------------------
    def _restore_window(self) -> None:
        geometry = self._settings.value("window/geometry")
        if isinstance(geometry, QByteArray | bytes) and geometry:
            self.restoreGeometry(geometry)
        splitter = self._settings.value("window/splitter")
        if not (isinstance(splitter, QByteArray | bytes) and splitter and self.splitter.restoreState(splitter)):
            sidebar, form = 215, 465
            self.splitter.setSizes([sidebar, max(400, self.width() - sidebar - form), form])

    def _saved_sort(self, key: str) -> tuple[str, bool]:
        saved = str(self._settings.value(f"views/{key}/sort", "id:asc"))
        column, _, direction = saved.partition(":")
        names = {c.name for c in RecordQuery(key).columns}
        return (column if column in names else "id"), direction == "desc"

    def _save_view_layout(self, key: str) -> None:
        """Remember the header of `key`'s view, the one on screen, and its sort."""
        self._settings.setValue(f"views/{key}/header", self.filter_header.saveState())
        query = self.model.query
        self._settings.setValue(f"views/{key}/sort", f"{query.sort_column}:{'desc' if query.descending else 'asc'}")

    def _restore_view_layout(self, key: str) -> None:
        state = self._settings.value(f"views/{key}/header")
        self.filter_header.blockSignals(True)
        restored = isinstance(state, QByteArray | bytes) and bool(state) and self.filter_header.restoreState(state)
        if not restored:
            for logical in range(self.model.columnCount()):
                self.filter_header.moveSection(self.filter_header.visualIndex(logical), logical)
            self.table.resizeColumnsToContents()
            for logical in range(self.model.columnCount()):
                width = self.filter_header.sectionSize(logical)
                self.filter_header.resizeSection(logical, max(60, min(width + 16, MAX_DEFAULT_COLUMN_WIDTH)))
        section, order = self.model.sort_section()
        self.filter_header.setSortIndicator(section, order)
        self.filter_header.blockSignals(False)
        self.filter_header.updateGeometries()

    def save_settings(self) -> None:
        self._settings.setValue("window/geometry", self.saveGeometry())
        self._settings.setValue("window/splitter", self.splitter.saveState())
        if self._key is not None:
            self._save_view_layout(self._key)
        self._settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        if not self.form.confirm_discard():
            event.ignore()
            return
        self.save_settings()
        self.model.cancel_loading()
        self.watcher.stop()
        event.accept()

    # --- help -------------------------------------------------------------------------------------
    @Slot()
    def about(self) -> None:
        QMessageBox.about(
            self, "About PaxDesk",
            f"<h3>PaxDesk {__version__}</h3><p>Curating international mediation — peace talks, processes and "
            "agreements — and UN peacekeeping deployments: contributions, contingents, authorisations and "
            f"incidents.</p><p>Database: {describe_target(self._target)}</p>")


@cache  # asked once per arriving change; the catalogue of record types does not change
def shown_types(key: str, *, links: bool = False) -> frozenset[str]:
    """The record types whose data the table of `key` shows: its own, and those its reference columns show
    by name (an actor's name in the contributions table). `links`: also those the form's link rows show."""
    spec = record_type(key)
    shown = {key} | {c.spec.ref for c in columns(spec) if c.spec is not None and c.spec.kind == "ref" and c.spec.ref}
    if links:
        shown |= {f.ref for link in spec.links for f in link.fields if f.kind == "ref" and f.ref}
        shown |= {f.ref for f in spec.fields if f.kind == "ref" and f.ref}
    return frozenset(shown)


def concerns(key: str, change: Change, *, links: bool = False) -> bool:
    """Whether `change` alters what the view (or form) of `key` shows. A new record of another type cannot:
    nothing shown refers to it yet (a row that does would be a change of `key` itself)."""
    if change.record_type == key:
        return True
    return change.action != "insert" and change.record_type in shown_types(key, links=links)
