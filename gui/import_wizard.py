"""The import wizard: choose a file and sheet, see its format (or map its columns to fields), preview every row
against the database (new, changed old → new, unchanged, error), import in the background with Cancel, and
save the error report. All the work is models.importing's; this module only asks and shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QAction, QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from gui.app import last_folder, remember_folder
from gui.tasks import BackgroundTask
from models.excel_read import WorkbookRefused, normalise_header
from models.import_report import write_error_report
from models.importing import (
    ACTION_WORDS,
    ColumnMapping,
    ImportOptions,
    ImportPlan,
    ImportResult,
    ImportSource,
    PlanPreview,
    SheetInfo,
    SheetPlan,
    StagedRow,
    apply_plan,
    stage_import,
)
from models.records import RECORD_TYPES, record_type

LAST_FOLDER_KEY = "import/last_folder"
PAGE_FILE, PAGE_MAPPING, PAGE_PREVIEW, PAGE_RUN = range(4)
ALL_SHEETS = "\x00all"  # the sheet choice of a PaxDesk data workbook: every record sheet
LEAVE_OUT = ""
STATUS_COLOURS = {"insert": "#e3f4e1", "update": "#fff3cd", "error": "#f8d7da"}
FORMAT_NAMES = {"un": "UN contributions", "paxdesk": "PaxDesk data workbook", "mapped": "Mapped columns"}
COUNT_WORDS = {"insert": "new", "update": "changed", "unchanged": "unchanged", "error": "refused"}
KIND_WORDS = {
    "un": "UN contributions",
    "mapped": "columns mapped to fields (a saved mapping)",
    "unknown": "columns to map to fields on the next page",
    "empty": "empty",
    "metadata": "the workbook's metadata",
}
# Where the file dialogs open; module-level so that tests can answer them.
get_open_file_name = QFileDialog.getOpenFileName
get_save_file_name = QFileDialog.getSaveFileName


def describe_sheet(info: SheetInfo) -> str:
    words = KIND_WORDS.get(info.kind, info.kind)
    if info.kind == "un":
        vintage = "data hub columns" if "contribution_id" in {normalise_header(h) for h in info.header_cells} \
            else "older columns"
        words = f"UN contributions ({vintage})"
    if info.kind == "mapped" and info.mapping is not None:
        words = f"{record_type(info.mapping.record_type).label}, with the mapping saved for these columns"
    rows = f", {info.data_rows:,} row{'s' if info.data_rows != 1 else ''}" if info.kind not in ("empty",
                                                                                                 "metadata") else ""
    return f"{words}{rows}"


# --- The preview table --------------------------------------------------------------------------------

class ImportPreviewTableModel(QAbstractTableModel):
    """The staged rows of a plan, optionally only those of one status; text is made when a row is shown, so
    100,000 rows cost a list of references, not 100,000 strings."""

    COLUMNS = ("Sheet", "Row", "Status", "Record", "Old → new, or why it is refused")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._preview: PlanPreview | None = None
        self._all: list[tuple[SheetPlan, StagedRow]] = []
        self._rows: list[tuple[SheetPlan, StagedRow]] = []
        self._status: str | None = None

    def set_plan(self, plan: ImportPlan | None) -> None:
        self.beginResetModel()
        self._preview = PlanPreview(plan) if plan is not None else None
        self._all = list(plan.staged()) if plan is not None else []
        self._rows = self._filtered()
        self.endResetModel()

    def set_status(self, status: str | None) -> None:
        """Show only rows of this action (insert, update, unchanged, error), or all (None)."""
        self.beginResetModel()
        self._status = status
        self._rows = self._filtered()
        self.endResetModel()

    def _filtered(self) -> list[tuple[SheetPlan, StagedRow]]:
        if self._status is None:
            return list(self._all)
        return [item for item in self._all if item[1].action == self._status]

    def staged_at(self, row: int) -> tuple[SheetPlan, StagedRow]:
        return self._rows[row]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.COLUMNS):
            return self.COLUMNS[section]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows) or self._preview is None:
            return None
        sheet, staged = self._rows[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            if column == 0:
                return sheet.name
            if column == 1:
                return staged.row if role == Qt.ItemDataRole.DisplayRole else f"Row {staged.row} of the sheet"
            if column == 2:
                return ACTION_WORDS.get(staged.action, staged.action)
            if column == 3:
                return self._preview.label(sheet, staged)
            if column == 4:
                return self._preview.details(sheet, staged)
        if role == Qt.ItemDataRole.BackgroundRole and staged.action in STATUS_COLOURS:
            return QBrush(QColor(STATUS_COLOURS[staged.action]))
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 1:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


# --- Pages --------------------------------------------------------------------------------------------

def _read_workbook(path: str) -> tuple[ImportSource, bool, dict[str, SheetInfo]] | WorkbookRefused:
    """The file page's work, off the GUI thread: the opened source, whether it is a PaxDesk data workbook, and
    each sheet's description; or the refusal (returned, not raised: an expected answer, not a failure)."""
    try:
        source = ImportSource(path)
    except WorkbookRefused as exc:
        return exc
    try:
        paxdesk = source.is_paxdesk()
        infos = {} if paxdesk else {name: source.describe(name) for name in source.sheet_names}
    except WorkbookRefused as exc:
        source.close()
        return exc
    except BaseException:
        source.close()
        raise
    return source, paxdesk, infos


class FilePage(QWizardPage):
    loaded = Signal()  # the chosen workbook was read (or refused)

    def __init__(self, wizard: ImportWizard):
        super().__init__()
        self._wizard = wizard
        self.setTitle("Choose a workbook")
        self.setSubTitle("UN contribution files, PaxDesk data workbooks, or any sheet whose columns you map to "
                         "fields once.")
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("An .xlsx or .xlsm workbook")
        self.path_edit.editingFinished.connect(lambda: self.load(self.path_edit.text()))
        self.browse_button = QPushButton("Choose…")
        self.browse_button.clicked.connect(self.choose_file)
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.browse_button)
        layout.addLayout(row)

        form = QFormLayout()
        self.sheet_combo = QComboBox()
        self.sheet_combo.currentIndexChanged.connect(self._sheet_changed)
        self.format_label = QLabel("")
        self.format_label.setWordWrap(True)
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("Update rows that exist, add the others", "upsert")
        self.mode_combo.addItem("Only add rows; a row that exists is an error", "insert")
        self.error_combo = QComboBox()
        self.error_combo.addItem("Write nothing if any row is refused", "abort")
        self.error_combo.addItem("Write the good rows, report the refused ones", "skip")
        form.addRow("Sheet:", self.sheet_combo)
        form.addRow("Format:", self.format_label)
        form.addRow("Existing rows:", self.mode_combo)
        form.addRow("Refused rows:", self.error_combo)
        layout.addLayout(form)
        self.problem_label = QLabel("")
        self.problem_label.setWordWrap(True)
        self.problem_label.setObjectName("importProblem")
        self.problem_label.setStyleSheet("color: #9c0006;")
        layout.addWidget(self.problem_label)
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)  # busy: how long reading takes is not known beforehand
        self.busy_bar.setTextVisible(False)
        self.busy_bar.hide()
        layout.addWidget(self.busy_bar)
        layout.addStretch(1)
        self._infos: dict[str, SheetInfo] = {}
        self._loading: BackgroundTask | None = None
        self._loading_path = ""

    @Slot()
    def choose_file(self) -> None:
        path, _ = get_open_file_name(self, "Import a workbook", last_folder(LAST_FOLDER_KEY),
                                     "Excel workbooks (*.xlsx *.xlsm);;All files (*)")
        if path:
            self.path_edit.setText(path)
            self.load(path)

    def load(self, path: str) -> None:
        """Open and describe the workbook (quick checks, then its sheets) in the background: reading a large
        file takes a second or more. `loaded` is emitted when it is done; a refusal is shown, not raised."""
        path = path.strip()
        if not path or (self._wizard.source is not None and str(self._wizard.source.path) == path) or \
                (self._loading is not None and self._loading_path == path):
            return
        self._wizard.close_source()
        self.sheet_combo.blockSignals(True)
        self.sheet_combo.clear()
        self.sheet_combo.blockSignals(False)
        self._infos = {}
        self.problem_label.setText("")
        self.format_label.setText("Reading the workbook…")
        self.busy_bar.show()
        if self._loading is not None:  # another file was chosen meanwhile: its result is dropped
            self._loading.cancel()
        task = BackgroundTask(lambda progress: _read_workbook(path), self)
        self._loading, self._loading_path = task, path
        task.finished.connect(lambda outcome: self._loaded(task, path, outcome))
        task.failed.connect(lambda message: self._loaded(task, path, WorkbookRefused(message)))
        self._wizard.running = task
        self.completeChanged.emit()
        task.start()

    @property
    def loading(self) -> bool:
        return self._loading is not None

    def _loaded(self, task: BackgroundTask, path: str, outcome: Any) -> None:
        if self._wizard.running is task:
            self._wizard.running = None
        if task is not self._loading:  # superseded by another file
            if isinstance(outcome, tuple):
                outcome[0].close()
            return
        self._loading = None
        self.busy_bar.hide()
        self.format_label.setText("")
        if isinstance(outcome, WorkbookRefused):
            self.problem_label.setText(str(outcome))
        else:
            source, paxdesk, infos = outcome
            self._wizard.source = source
            if paxdesk:
                self.sheet_combo.addItem("Every sheet (a PaxDesk data workbook)", ALL_SHEETS)
            else:
                self._infos = infos
                for name, info in infos.items():
                    rows = f" ({info.data_rows:,} rows)" if info.kind not in ("empty", "metadata") else " (empty)"
                    self.sheet_combo.addItem(f"{name}{rows}", name)
                usable = [i for i in range(self.sheet_combo.count())
                          if self._infos[self.sheet_combo.itemData(i)].kind in ("un", "mapped", "unknown")]
                if usable:
                    self.sheet_combo.setCurrentIndex(usable[0])
            remember_folder(LAST_FOLDER_KEY, path)
        self._sheet_changed()
        self.loaded.emit()

    def sheet_name(self) -> str | None:
        value = self.sheet_combo.currentData()
        return None if value in (None, ALL_SHEETS) else value

    def sheet_info(self) -> SheetInfo | None:
        return self._infos.get(self.sheet_name() or "")

    def is_paxdesk(self) -> bool:
        return self.sheet_combo.currentData() == ALL_SHEETS

    @Slot()
    def _sheet_changed(self) -> None:
        info = self.sheet_info()
        if self.is_paxdesk():
            self.format_label.setText("PaxDesk data workbook: every record and link sheet, rows kept by their ids")
        elif info is not None:
            self.format_label.setText(describe_sheet(info))
            self.problem_label.setText("This sheet holds nothing to import." if info.kind in ("empty", "metadata")
                                       else "")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        if self._wizard.source is None or self._loading is not None:
            return False
        if self.is_paxdesk():
            return True
        info = self.sheet_info()
        return info is not None and info.kind in ("un", "mapped", "unknown") and info.header_index is not None

    def nextId(self) -> int:
        info = self.sheet_info()
        return PAGE_MAPPING if info is not None and info.kind in ("mapped", "unknown") else PAGE_PREVIEW


class MappingPage(QWizardPage):
    """One row per column of the sheet: which field of the chosen record type it holds (or none)."""

    def __init__(self, wizard: ImportWizard):
        super().__init__()
        self._wizard = wizard
        self.setTitle("Map the columns to fields")
        self.setSubTitle("PaxDesk remembers this mapping for sheets with the same columns and offers it again.")
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.type_combo = QComboBox()
        for key, spec in RECORD_TYPES.items():
            self.type_combo.addItem(spec.label, key)
        self.type_combo.currentIndexChanged.connect(self._type_changed)
        form.addRow("The rows are:", self.type_combo)
        layout.addLayout(form)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Column in the sheet", "First value", "PaxDesk field"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(2, 280)  # wide enough for the longest field label
        layout.addWidget(self.table, 1)
        self.missing_label = QLabel("")
        self.missing_label.setWordWrap(True)
        self.missing_label.setStyleSheet("color: #9c0006;")
        layout.addWidget(self.missing_label)
        self.combos: list[QComboBox] = []
        self._headers: list[str] = []

    def initializePage(self) -> None:
        info = self._wizard.file_page.sheet_info()
        assert info is not None and self._wizard.source is not None
        self._headers = [h for h in info.header_cells]
        rows = self._wizard.source.sheet(info.name).rows
        first = next((row for row in rows[info.header_index + 1:] if any(v not in ("", None) for v in row)), [])
        self.table.setRowCount(len(self._headers))
        self.combos = []
        for row, header in enumerate(self._headers):
            self.table.setItem(row, 0, QTableWidgetItem(header or f"(column {row + 1}, no header)"))
            sample = first[row] if row < len(first) else ""
            self.table.setItem(row, 1, QTableWidgetItem("" if sample is None else str(sample)))
            combo = QComboBox()
            combo.currentIndexChanged.connect(self._check)
            self.table.setCellWidget(row, 2, combo)
            self.combos.append(combo)
        key = info.mapping.record_type if info.mapping else self.type_combo.currentData()
        self.type_combo.blockSignals(True)
        self.type_combo.setCurrentIndex(max(0, self.type_combo.findData(key)))
        self.type_combo.blockSignals(False)
        self._fill_combos(info.mapping)

    def record_key(self) -> str:
        return self.type_combo.currentData()

    @Slot()
    def _type_changed(self) -> None:
        self._fill_combos(None)

    def _fill_combos(self, mapping: ColumnMapping | None) -> None:
        spec = record_type(self.record_key())
        saved = {normalise_header(h): name for h, name in mapping.columns.items()} if mapping is not None else {}
        for header, combo in zip(self._headers, self.combos, strict=True):
            combo.blockSignals(True)
            combo.clear()
            combo.addItem("(leave out)", LEAVE_OUT)
            for spec_field in spec.fields:
                combo.addItem(spec_field.label + (" *" if spec_field.required else ""), spec_field.name)
            if mapping is not None and mapping.record_type == spec.key:
                wanted = saved.get(normalise_header(header), LEAVE_OUT)  # the same headers, any case and order
            else:
                wanted = self._guess(header)
            combo.setCurrentIndex(max(0, combo.findData(wanted)))
            combo.blockSignals(False)
        self._check()

    def _guess(self, header: str) -> str:
        """A field whose name or label is the header (case, accents and spacing aside)."""
        spec = record_type(self.record_key())
        wanted = normalise_header(header)
        for spec_field in spec.fields:
            if wanted in (normalise_header(spec_field.name), normalise_header(spec_field.label)):
                return spec_field.name
        return LEAVE_OUT

    def mapping(self) -> ColumnMapping:
        return ColumnMapping(self.record_key(), {header: combo.currentData() or LEAVE_OUT
                                                 for header, combo in zip(self._headers, self.combos, strict=True)
                                                 if header})

    @Slot()
    def _check(self) -> None:
        chosen = [combo.currentData() for combo in self.combos if combo.currentData()]
        spec = record_type(self.record_key())
        missing = [f.label for f in spec.fields if f.required and f.name not in chosen]
        twice = sorted({record_type(self.record_key()).field(name).label for name in chosen
                        if chosen.count(name) > 1})
        problems = []
        if missing:
            problems.append(f"Choose a column for: {', '.join(missing)} (required).")
        if twice:
            problems.append(f"Each field takes one column: {', '.join(twice)} is chosen twice.")
        self.missing_label.setText(" ".join(problems))
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return not self.missing_label.text()

    def nextId(self) -> int:
        return PAGE_PREVIEW


class PreviewPage(QWizardPage):
    """Stages the import in the background and shows every row against the database."""

    def __init__(self, wizard: ImportWizard):
        super().__init__()
        self._wizard = wizard
        self.setTitle("Check the rows")
        self.setSubTitle("Nothing has been written yet. New rows are green, changed ones amber, refused ones red.")
        self.setCommitPage(True)
        self.setButtonText(QWizard.WizardButton.CommitButton, "Import")
        layout = QVBoxLayout(self)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(False)
        self.counts_label = QLabel("")
        self.counts_label.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.counts_label, 1)
        top.addWidget(QLabel("Show:"))
        self.status_combo = QComboBox()
        self.status_combo.addItem("All rows", None)
        for action in ("insert", "update", "unchanged", "error"):
            self.status_combo.addItem(ACTION_WORDS[action], action)
        self.status_combo.currentIndexChanged.connect(
            lambda: self.model.set_status(self.status_combo.currentData()))
        top.addWidget(self.status_combo)
        layout.addWidget(self.progress_bar)
        layout.addLayout(top)
        self.model = ImportPreviewTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAlternatingRowColors(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)
        layout.addWidget(self.table, 1)
        self.row_label = QLabel("")  # the whole story of the selected row, which the table may cut short
        self.row_label.setWordWrap(True)
        self.row_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table.selectionModel().currentRowChanged.connect(self._row_selected)
        layout.addWidget(self.row_label)
        bottom = QHBoxLayout()
        self.verdict_label = QLabel("")
        self.verdict_label.setWordWrap(True)
        self.report_button = QPushButton("Save error report…")
        self.report_button.setEnabled(False)
        self.report_button.clicked.connect(self._wizard.save_report)
        bottom.addWidget(self.verdict_label, 1)
        bottom.addWidget(self.report_button)
        layout.addLayout(bottom)
        self._task: BackgroundTask | None = None

    def initializePage(self) -> None:
        self._wizard.plan = None
        self.model.set_plan(None)
        self.counts_label.setText("Checking every row against the database…")
        self.verdict_label.setText("")
        self.row_label.setText("")
        self.report_button.setEnabled(False)
        self.progress_bar.setRange(0, 0)
        self.progress_bar.show()
        source, options = self._wizard.source, self._wizard.options()
        self._task = BackgroundTask(lambda progress: stage_import(source, options, progress), self)
        self._task.progressed.connect(self._progressed)
        self._task.finished.connect(self._staged)
        self._task.failed.connect(self._failed)
        self._task.cancelled.connect(lambda: self._failed("Checking was cancelled."))
        self._wizard.running = self._task
        self._task.start()
        self.completeChanged.emit()

    def cleanupPage(self) -> None:
        if self._task is not None:
            self._task.cancel()

    @Slot(QModelIndex, QModelIndex)
    def _row_selected(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self.row_label.setText("")
            return
        sheet, staged = self.model.staged_at(current.row())
        details = self.model.index(current.row(), 4).data() or self.model.index(current.row(), 3).data()
        self.row_label.setText(f"Row {staged.row} of '{sheet.name}': {details}")

    @Slot(int, int, str)
    def _progressed(self, done: int, total: int, message: str) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)

    @Slot(object)
    def _staged(self, plan: ImportPlan) -> None:
        self._task = None
        self._wizard.running = None
        self._wizard.plan = plan
        self.progress_bar.hide()
        self.model.set_plan(plan)
        self.table.resizeColumnsToContents()
        # The record's name may be long; the reasons matter more, and get the rest (the tooltip holds it all).
        self.table.setColumnWidth(3, min(self.table.columnWidth(3), 260))
        self.table.horizontalHeader().setStretchLastSection(True)
        counts = plan.counts()
        parts = [f"{counts.get(a, 0):,} {COUNT_WORDS[a]}" for a in ("insert", "update", "unchanged", "error")]
        removed = f", {plan.deleted:,} link rows to remove" if plan.deleted else ""
        self.counts_label.setText(f"<b>{FORMAT_NAMES.get(plan.format, plan.format)}</b>: " + ", ".join(parts)
                                  + removed)
        errors = counts.get("error", 0) + len(plan.problems)
        self.report_button.setEnabled(errors > 0)
        if plan.refused:
            self.verdict_label.setText(
                f"{errors:,} row{'s are' if errors != 1 else ' is'} refused, so nothing will be written. Save the "
                "error report, fix the marked cells and import it; or go back and choose to write the good rows.")
        elif plan.writes == 0:
            self.verdict_label.setText("The database already holds every row as it is: nothing to write.")
        elif errors:
            self.verdict_label.setText(f"The good rows will be written; {errors:,} refused "
                                       f"row{'s' if errors != 1 else ''} will be left out.")
        else:
            self.verdict_label.setText("Every row is accepted. Import writes them in one step, which Edit → Undo "
                                       "can take back.")
        self.completeChanged.emit()

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._task = None
        self._wizard.running = None
        self.progress_bar.hide()
        self.counts_label.setText("")
        self.verdict_label.setText(message)
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        plan = self._wizard.plan
        return plan is not None and not plan.refused and plan.writes > 0

    def nextId(self) -> int:
        return PAGE_RUN


class RunPage(QWizardPage):
    """Writes the plan in the background: a progress bar, Cancel (nothing written), then the summary."""

    def __init__(self, wizard: ImportWizard):
        super().__init__()
        self._wizard = wizard
        self.setTitle("Importing")
        layout = QVBoxLayout(self)
        self.progress_bar = QProgressBar()
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row = QHBoxLayout()
        self.cancel_button = QPushButton("Cancel import")
        self.cancel_button.clicked.connect(self.cancel)
        self.report_button = QPushButton("Save error report…")
        self.report_button.setEnabled(False)
        self.report_button.clicked.connect(self._wizard.save_report)
        row.addStretch(1)
        row.addWidget(self.report_button)
        row.addWidget(self.cancel_button)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addLayout(row)
        layout.addStretch(1)
        self._task: BackgroundTask | None = None
        self._done = False

    def initializePage(self) -> None:
        plan = self._wizard.plan
        assert plan is not None
        self._done = False
        self.setTitle("Importing")
        self.cancel_button.show()
        self.setSubTitle(f"{plan.path.name} into the database, in one transaction.")
        self.status_label.setText("Backing up the database, then writing…")
        self.progress_bar.setRange(0, 0)
        self.cancel_button.setEnabled(True)
        self._task = BackgroundTask(lambda progress: apply_plan(plan, progress), self)
        self._task.progressed.connect(self._progressed)
        self._task.finished.connect(self._finished)
        self._task.failed.connect(self._failed)
        self._task.cancelled.connect(self._cancelled)
        self._wizard.running = self._task
        self._task.start()

    @Slot()
    def cancel(self) -> None:
        if self._task is not None:
            self.status_label.setText("Cancelling: rolling the transaction back…")
            self.cancel_button.setEnabled(False)
            self._task.cancel()

    @Slot(int, int, str)
    def _progressed(self, done: int, total: int, message: str) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        self.status_label.setText(f"{message} {done:,} of {total:,}")

    def _end(self, text: str) -> None:
        self._task = None
        self._wizard.running = None
        self._done = True
        self.cancel_button.hide()
        self.status_label.setText(text)
        self.completeChanged.emit()

    @Slot(object)
    def _finished(self, result: ImportResult) -> None:
        self._wizard.result = result
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1)
        self.report_button.setEnabled(bool(result.errors))
        text = result.summary()
        self.setTitle("Import finished" if result.written else "Nothing imported")
        if result.written:
            text += "\nThe import is one change: Edit → Undo in the main window takes it back."
        elif result.failure is not None:
            text += f"\n{result.failure.reason}"
        self._end(text)
        if result.written:
            self._wizard.imported.emit(result)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._end(f"The import failed and nothing was written: {message}")

    @Slot()
    def _cancelled(self) -> None:
        self.setTitle("Import cancelled")
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self._end("Cancelled: nothing was written.")
        self._wizard.import_cancelled.emit()

    def isComplete(self) -> bool:
        return self._done


class ImportWizard(QWizard):
    """File → Import…. Emits `imported(result)` after a written import (refresh views, offer Undo)."""

    imported = Signal(object)  # ImportResult
    import_cancelled = Signal()
    report_saved = Signal(str)

    def __init__(self, parent: QWidget | None = None, path: str | Path | None = None):
        super().__init__(parent)
        self.setWindowTitle("Import from Excel")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage, True)
        self.setMinimumSize(820, 560)
        self.source: ImportSource | None = None
        self.plan: ImportPlan | None = None
        self.result: ImportResult | None = None
        self.running: BackgroundTask | None = None
        self.file_page = FilePage(self)
        self.mapping_page = MappingPage(self)
        self.preview_page = PreviewPage(self)
        self.run_page = RunPage(self)
        self.setPage(PAGE_FILE, self.file_page)
        self.setPage(PAGE_MAPPING, self.mapping_page)
        self.setPage(PAGE_PREVIEW, self.preview_page)
        self.setPage(PAGE_RUN, self.run_page)
        if path is not None:
            self.file_page.path_edit.setText(str(path))
            self.file_page.load(str(path))

    def options(self) -> ImportOptions:
        page = self.file_page
        mapping = None
        if not page.is_paxdesk() and self.hasVisitedPage(PAGE_MAPPING) and page.nextId() == PAGE_MAPPING:
            mapping = self.mapping_page.mapping()
        return ImportOptions(format="paxdesk" if page.is_paxdesk() else ("mapped" if mapping else "auto"),
                             sheet=page.sheet_name(), mode=page.mode_combo.currentData(),
                             on_error=page.error_combo.currentData(), mapping=mapping)

    @Slot()
    def save_report(self) -> None:
        if self.plan is None:
            return
        default = str(Path(last_folder(LAST_FOLDER_KEY)) / f"{self.plan.path.stem}-errors.xlsx")
        path, _ = get_save_file_name(self, "Save the error report", default, "Excel workbook (*.xlsx)")
        if not path:
            return
        if not path.lower().endswith(".xlsx"):
            path += ".xlsx"
        failure = self.result.failure if self.result is not None else None
        try:
            saved = write_error_report(self.plan, path, [failure] if failure else None)
        except Exception as exc:  # a folder without permission, a file open in Excel
            self.preview_page.verdict_label.setText(f"Could not save the report: {exc}")
            return
        self.report_saved.emit(str(saved))

    def close_source(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None

    def reject(self) -> None:
        """Cancel: a running check or import is cancelled first (the transaction rolls back)."""
        if self.running is not None:
            self.running.cancel()
            self.running.finished.connect(lambda _result: self.reject())
            self.running.cancelled.connect(self.reject)
            self.running.failed.connect(lambda _message: self.reject())
            self.running = None
            return
        self.close_source()
        super().reject()

    def accept(self) -> None:
        self.close_source()
        super().accept()


def install_import_action(window) -> QAction:
    """File → Import… on the main window (which offers add_file_action, refresh and undo_stack): the
    import becomes one Edit → Undo step and the shown table is read again."""
    action = QAction("&Import…", window)
    action.setStatusTip("Import a UN contributions file, a PaxDesk data workbook or any sheet")

    def imported(result: ImportResult) -> None:
        stack = getattr(window, "undo_stack", None)
        if stack is not None and result.change_set_id is not None:
            from gui.undo import ChangeSetCommand

            stack.push(ChangeSetCommand(f"Import {result.path.name}", result.change_set_id))
        window.refresh()

    def show() -> None:
        wizard = ImportWizard(window)
        wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        wizard.imported.connect(imported)
        wizard.show()

    action.triggered.connect(show)
    window.add_file_action(action)
    return action

