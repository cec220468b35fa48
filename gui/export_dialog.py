"""The Export dialog (data or summary workbook, which summaries, reporting date, contributors, missions) and
"export current view" from any table; the export runs in the background with progress and Cancel."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from gui.app import last_folder, remember_folder
from gui.tasks import BackgroundTask
from models import schema
from models.excel_write import ExportResult
from models.export_data import export_data
from models.export_summary import SUMMARIES, export_summary
from models.export_view import describe_query, export_view
from models.progress import Progress
from models.queries import RecordQuery
from models.summaries import SummaryFilters, reporting_dates

# Module-level so that tests can replace it and see what would have been opened.
open_url = QDesktopServices.openUrl

LAST_FOLDER_KEY = "export/last_folder"


def run_export(kind: str, path: Path, filters: SummaryFilters, which: tuple[str, ...],
               query: RecordQuery | None, progress: Progress) -> ExportResult:
    """The work the dialog runs in the background thread."""
    if kind == "view":
        assert query is not None
        return export_view(query, path, progress)
    if kind == "summary":
        return export_summary(path, filters, which, progress)
    return export_data(path, progress=progress)


class ExportDialog(QDialog):
    """Choose what to export and where, run it, and offer to open the result."""

    export_finished = Signal(object)  # ExportResult
    export_failed = Signal(str)
    export_cancelled = Signal()

    def __init__(self, parent: QWidget | None = None, query: RecordQuery | None = None):
        super().__init__(parent)
        self._query = query
        self._task: BackgroundTask | None = None
        self._result: ExportResult | None = None
        self.setWindowTitle("Export current view" if query else "Export to Excel")
        self.setMinimumWidth(620)

        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        if query is None:
            layout.addWidget(self._build_kind())
            self.summary_box = self._build_summaries()
            layout.addWidget(self.summary_box)
        else:
            count = query.count()
            self.view_label = QLabel(
                f"<b>{query.spec.label}</b>: {count:,} row{'s' if count != 1 else ''}, "
                f"{len(query.columns)} columns<br>{describe_query(query)}")
            self.view_label.setWordWrap(True)
            layout.addWidget(self.view_label)

        file_row = QHBoxLayout()
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("Choose where to save the workbook")
        self.path_edit.setText(str(Path(last_folder(LAST_FOLDER_KEY)) / self._default_name()))
        self.browse_button = QPushButton("Choose…")
        self.browse_button.clicked.connect(self.choose_file)
        file_row.addWidget(QLabel("Save as:"))
        file_row.addWidget(self.path_edit, 1)
        file_row.addWidget(self.browse_button)
        layout.addLayout(file_row)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setTextVisible(False)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)

        buttons = QHBoxLayout()
        self.open_file_button = QPushButton("Open file")
        self.open_folder_button = QPushButton("Open folder")
        for button in (self.open_file_button, self.open_folder_button):
            button.setEnabled(False)
        self.open_file_button.clicked.connect(self.open_file)
        self.open_folder_button.clicked.connect(self.open_folder)
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button = QPushButton("Close")
        self.cancel_button.clicked.connect(self.cancel_or_close)
        buttons.addWidget(self.open_file_button)
        buttons.addWidget(self.open_folder_button)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self._update_enabled()

    # --- building -----------------------------------------------------------------------------------
    def _build_kind(self) -> QWidget:
        box = QGroupBox("What to export")
        grid = QVBoxLayout(box)
        self.data_radio = QRadioButton("Data workbook: every record and link, for editing and importing back")
        self.summary_radio = QRadioButton("Summary workbook: tables and charts for reading and printing")
        self.data_radio.setChecked(True)
        self.kind_group = QButtonGroup(self)
        for button in (self.data_radio, self.summary_radio):
            self.kind_group.addButton(button)
            grid.addWidget(button)
            button.toggled.connect(self._kind_changed)
        return box

    def _build_summaries(self) -> QGroupBox:
        box = QGroupBox("Summary contents")
        layout = QVBoxLayout(box)
        checks = QGridLayout()
        self.summary_checks: dict[str, QCheckBox] = {}
        for index, (key, (title, _)) in enumerate(SUMMARIES.items()):
            check = QCheckBox(title)
            check.setChecked(True)
            check.toggled.connect(self._update_enabled)
            self.summary_checks[key] = check
            checks.addWidget(check, index // 3, index % 3)
        layout.addLayout(checks)

        form = QFormLayout()
        self.date_combo = QComboBox()
        self.date_combo.addItem("Latest reporting date", None)
        for day in reporting_dates():
            self.date_combo.addItem(day.isoformat(), day)
        form.addRow("Reporting date:", self.date_combo)
        layout.addLayout(form)

        lists = QHBoxLayout()
        self.contributor_list = self._choice_list(_contributors())
        self.mission_list = self._choice_list(_missions())
        for title, widget in (("Contributors (none selected: all)", self.contributor_list),
                              ("Missions (none selected: all)", self.mission_list)):
            column = QVBoxLayout()
            column.addWidget(QLabel(title))
            column.addWidget(widget)
            lists.addLayout(column)
        layout.addLayout(lists)
        return box

    @staticmethod
    def _choice_list(items: list[tuple[int, str]]) -> QListWidget:
        widget = QListWidget()
        widget.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        widget.setMinimumHeight(110)
        for record_id, name in items:
            item = QListWidgetItem(name)
            item.setData(Qt.ItemDataRole.UserRole, record_id)
            widget.addItem(item)
        return widget

    def _default_name(self) -> str:
        today = dt.date.today().isoformat()
        if self._query is not None:
            return f"paxdesk-{self._query.key}-{today}.xlsx"
        return f"paxdesk-{self.kind()}-{today}.xlsx"

    # --- state --------------------------------------------------------------------------------------
    def kind(self) -> str:
        if self._query is not None:
            return "view"
        return "summary" if self.summary_radio.isChecked() else "data"

    def set_kind(self, kind: str) -> None:
        (self.summary_radio if kind == "summary" else self.data_radio).setChecked(True)

    def filters(self) -> SummaryFilters:
        if self._query is not None:
            return SummaryFilters()

        def chosen(widget: QListWidget) -> tuple[int, ...]:
            return tuple(item.data(Qt.ItemDataRole.UserRole) for item in widget.selectedItems())

        return SummaryFilters(as_of=self.date_combo.currentData(), contributors=chosen(self.contributor_list),
                              missions=chosen(self.mission_list))

    def chosen_summaries(self) -> tuple[str, ...]:
        if self._query is not None:
            return ()
        return tuple(key for key, check in self.summary_checks.items() if check.isChecked())

    def running(self) -> bool:
        return self._task is not None

    @Slot()
    def _kind_changed(self) -> None:
        current = Path(self.path_edit.text())
        if current.name.startswith("paxdesk-data-") or current.name.startswith("paxdesk-summary-"):
            self.path_edit.setText(str(current.with_name(self._default_name())))
        self._update_enabled()

    @Slot()
    def _update_enabled(self) -> None:
        busy = self.running()
        if self._query is None:
            self.summary_box.setEnabled(self.kind() == "summary" and not busy)
            self.data_radio.setEnabled(not busy)
            self.summary_radio.setEnabled(not busy)
        self.path_edit.setEnabled(not busy)
        self.browse_button.setEnabled(not busy)
        nothing_chosen = self.kind() == "summary" and not self.chosen_summaries()
        self.export_button.setEnabled(not busy and not nothing_chosen)
        self.cancel_button.setText("Cancel" if busy else "Close")

    # --- actions ------------------------------------------------------------------------------------
    @Slot()
    def choose_file(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save workbook as", self.path_edit.text(),
                                              "Excel workbook (*.xlsx)")
        if path:
            self.path_edit.setText(path if path.lower().endswith(".xlsx") else f"{path}.xlsx")

    @Slot()
    def start_export(self) -> None:
        if self.running():
            return
        text = self.path_edit.text().strip()
        if not text:
            self._show_status("Choose where to save the workbook.", error=True)
            return
        path = Path(text).expanduser()
        if path.suffix.lower() != ".xlsx":
            path = path.with_name(path.name + ".xlsx")
            self.path_edit.setText(str(path))
        kind, filters, which, query = self.kind(), self.filters(), self.chosen_summaries(), self._query
        self._result = None
        self.open_file_button.setEnabled(False)
        self.open_folder_button.setEnabled(False)
        self._task = BackgroundTask(lambda progress: run_export(kind, path, filters, which, query, progress), self)
        self._task.progressed.connect(self._progressed)
        self._task.finished.connect(self._finished)
        self._task.failed.connect(self._failed)
        self._task.cancelled.connect(self._cancelled)
        self.progress_bar.setRange(0, 0)  # busy until the first report
        self.progress_bar.setTextVisible(True)
        self._show_status("Exporting…")
        self._update_enabled()
        self._task.start()

    @Slot()
    def cancel_or_close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._show_status("Cancelling…")
        else:
            self.reject()

    @Slot(int, int, str)
    def _progressed(self, done: int, total: int, message: str) -> None:
        if self._task is None:
            return
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(min(done, max(total, 1)))
        if message:
            self._show_status(message)

    @Slot(object)
    def _finished(self, result: ExportResult) -> None:
        self._task = None
        self._result = result
        remember_folder(LAST_FOLDER_KEY, result.path)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1)
        rows = sum(result.sheets.values())
        self._show_status(f"Saved {result.path.name} ({rows:,} rows on {len(result.sheets)} sheets) "
                          f"in {result.path.parent}.")
        self.open_file_button.setEnabled(True)
        self.open_folder_button.setEnabled(True)
        self._update_enabled()
        self.export_finished.emit(result)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._task = None
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self._show_status(f"Export failed: {message}", error=True)
        self._update_enabled()
        self.export_failed.emit(message)

    @Slot()
    def _cancelled(self) -> None:
        self._task = None
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self._show_status("Export cancelled; no file was written.")
        self._update_enabled()
        self.export_cancelled.emit()

    def _show_status(self, text: str, error: bool = False) -> None:
        self.status_label.setStyleSheet("color: #b00020;" if error else "")
        self.status_label.setText(text)

    @Slot()
    def open_file(self) -> None:
        if self._result is not None:
            open_url(QUrl.fromLocalFile(str(self._result.path)))

    @Slot()
    def open_folder(self) -> None:
        if self._result is not None:
            open_url(QUrl.fromLocalFile(str(self._result.path.parent)))

    def reject(self) -> None:  # Escape or the window's close button while exporting cancels first
        if self._task is not None:
            self._task.cancel()
            return
        super().reject()


def _contributors() -> list[tuple[int, str]]:
    """Countries that have contribution figures, by name."""
    C, A = schema.Contribution, schema.Actor
    return list(A.select(A.id, A.name).where(A.id.in_(C.select(C.contributor).distinct())).order_by(A.name).tuples())


def _missions() -> list[tuple[int, str]]:
    M = schema.Mission
    return list(M.select(M.id, M.acronym).order_by(M.acronym).tuples())


def export_current_view(parent: QWidget | None, query: RecordQuery,
                        path: str | Path | None = None) -> ExportDialog | None:
    """Ask where to save (unless `path` is given) and export the table's current view at once; returns the
    dialog showing progress, or None when the user chose no file."""
    if path is None:
        suggested = Path(last_folder(LAST_FOLDER_KEY)) / f"paxdesk-{query.key}-{dt.date.today().isoformat()}.xlsx"
        chosen, _ = QFileDialog.getSaveFileName(parent, f"Export {query.spec.label.lower()} as", str(suggested),
                                                "Excel workbook (*.xlsx)")
        if not chosen:
            return None
        path = chosen
    dialog = ExportDialog(parent, query=query)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    dialog.path_edit.setText(str(path))
    dialog.show()
    dialog.start_export()
    return dialog


def install_export_actions(window) -> tuple[QAction, QAction]:
    """Add File → Export… and File → Export current view… to the main window (which offers
    `add_file_action(action)` and `current_query()`)."""
    export_action = QAction("&Export…", window)
    export_action.setStatusTip("Export a data or summary workbook")
    export_action.triggered.connect(lambda: show_export_dialog(window))
    view_action = QAction("Export current &view…", window)
    view_action.setStatusTip("Export the rows and columns the table shows, as they are filtered and sorted")
    view_action.triggered.connect(lambda: export_current_view(window, window.current_query()))
    window.add_file_action(export_action)
    window.add_file_action(view_action)
    return export_action, view_action


def show_export_dialog(parent: QWidget | None = None) -> ExportDialog:
    """File → Export…: a non-modal dialog (the export runs while the user keeps working)."""
    dialog = ExportDialog(parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    dialog.show()
    return dialog
