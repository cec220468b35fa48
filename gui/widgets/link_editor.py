"""A small table editing the rows that belong to a record (participants, milestones, citations…), with the
same editors as the form's fields in its cells."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gui.widgets.field_editors import FieldEditor, RefChoices, make_editor
from models.codes import code_list
from models.records import FieldSpec, LinkSpec

ERROR_STYLE = "color: #b3261e;"
# How the table's width is shared among columns: names and quotes need room, codes and dates little.
COLUMN_WEIGHTS = {"ref": 3.0, "longtext": 3.0, "text": 1.6, "code": 1.5, "edtf": 1.3, "date": 1.3, "int": 1.0,
                  "float": 1.0, "bool": 0.8}
REMOVE_COLUMN_WIDTH = 32


def row_noun(link: LinkSpec) -> str:
    """'Participants' → 'participant', 'Parties' → 'party', 'Aliases' → 'alias', 'Missions covered' → 'mission'."""
    word = link.label.split()[0].lower()
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("ses"):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


class LinkEditor(QWidget):
    """Rows as editors; `raw_rows()` gives what validation and save read, one dict per table row."""

    changed = Signal()
    rows_changed = Signal()  # a row was added or removed: the tab order has to follow

    def __init__(self, link: LinkSpec, ref_choices: RefChoices, parent: QWidget | None = None):
        super().__init__(parent)
        self.link = link
        self._choices = ref_choices
        self._rows: list[list[FieldEditor]] = []
        self._remove_buttons: list[QToolButton] = []
        noun = row_noun(link)
        self._noun = noun

        self.table = QTableWidget(0, len(link.fields) + 1, self)
        self.table.setObjectName(f"link_{link.name}")
        self.table.setHorizontalHeaderLabels([f.label + (" *" if f.required else "") for f in link.fields] + [""])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        # Tab walks through the cell editors like through the form's fields, not through table cells.
        self.table.setTabKeyNavigation(False)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self._overflow = False
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setWordWrap(False)
        self.table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.table.installEventFilter(self)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        for column, spec in enumerate(link.fields):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Fixed)
            if spec.help:
                self.table.horizontalHeaderItem(column).setToolTip(spec.help)
        header.setSectionResizeMode(len(link.fields), QHeaderView.ResizeMode.Fixed)
        rows = self.table.verticalHeader()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        probe = make_editor(link.fields[0], ref_choices, compact=True)
        rows.setDefaultSectionSize(max(probe.sizeHint().height(), 26) + 6)
        probe.deleteLater()

        self.add_button = QPushButton(f"Add {noun}")
        self.add_button.setObjectName(f"add_{link.name}")
        self.add_button.clicked.connect(self._add_clicked)
        self.empty_label = QLabel(f"No {link.label.lower()} yet.")
        self.empty_label.setStyleSheet("color: palette(placeholder-text);")
        self.messages = QLabel()
        self.messages.setObjectName(f"messages_{link.name}")
        self.messages.setStyleSheet(ERROR_STYLE)
        self.messages.setWordWrap(True)
        self.messages.setVisible(False)

        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.empty_label)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self.table)
        layout.addWidget(self.messages)
        layout.addLayout(buttons)
        self._fit_height()

    # --- rows -------------------------------------------------------------------------------------
    def row_count(self) -> int:
        return len(self._rows)

    def editor(self, row: int, field_name: str) -> FieldEditor:
        column = [f.name for f in self.link.fields].index(field_name)
        return self._rows[row][column]

    def add_row(self, values: dict[str, Any] | None = None) -> list[FieldEditor]:
        row = len(self._rows)
        self.table.insertRow(row)
        editors = []
        for column, spec in enumerate(self.link.fields):
            editor = make_editor(spec, self._choices, compact=True)
            if values is not None:
                editor.set_stored(values.get(spec.name))
            editor.changed.connect(self.changed)
            self.table.setCellWidget(row, column, editor)
            editors.append(editor)
        remove = QToolButton()
        remove.setText("✕")
        remove.setAutoRaise(True)
        remove.setToolTip(f"Remove this {self._noun}")
        remove.setAccessibleName(f"Remove {self._noun}")
        remove.clicked.connect(self._remove_clicked)
        self.table.setCellWidget(row, len(self.link.fields), remove)
        self._rows.append(editors)
        self._remove_buttons.append(remove)
        self._fit_height()
        return editors

    def remove_row(self, row: int) -> None:
        self.table.removeRow(row)
        del self._rows[row]
        del self._remove_buttons[row]
        self._fit_height()
        self.rows_changed.emit()
        self.changed.emit()

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        """Show these rows, reusing the row editors already there: opening record after record stays quick."""
        while len(self._rows) > len(rows):
            last = len(self._rows) - 1
            self.table.removeRow(last)
            del self._rows[last]
            del self._remove_buttons[last]
        for index, values in enumerate(rows):
            if index < len(self._rows):
                for spec, editor in zip(self.link.fields, self._rows[index], strict=True):
                    editor.set_stored(values.get(spec.name))
                    editor.set_issue("")
            else:
                self.add_row(values)
        self._fit_height()
        self.rows_changed.emit()

    def raw_rows(self) -> list[dict[str, Any]]:
        return [{spec.name: editor.raw() for spec, editor in zip(self.link.fields, editors, strict=True)}
                for editors in self._rows]

    def problems(self) -> list[dict[str, str]]:
        """Per row: the editors' own messages (names matching no record), by field."""
        return [{spec.name: message for spec, editor in zip(self.link.fields, editors, strict=True)
                 if (message := editor.problem())} for editors in self._rows]

    def state(self) -> tuple:
        return tuple(tuple(editor.state() for editor in editors) for editors in self._rows)

    def capture(self) -> list[list[Any]]:
        return [[editor.capture() for editor in editors] for editors in self._rows]

    def restore(self, captured: list[list[Any]]) -> None:
        self.set_rows([{} for _ in captured])  # rows of empty editors, then exactly what was captured
        for editors, values in zip(self._rows, captured, strict=True):
            for editor, value in zip(editors, values, strict=True):
                editor.restore(value)

    def focus_widgets(self) -> list[QWidget]:
        widgets: list[QWidget] = []
        for editors, remove in zip(self._rows, self._remove_buttons, strict=True):
            for editor in editors:
                widgets.extend(editor.focus_widgets())
            widgets.append(remove)
        widgets.append(self.add_button)
        return widgets

    # --- messages ---------------------------------------------------------------------------------
    def show_issues(self, issues: list[tuple[int | None, str, str]]) -> None:
        """(row index or None for the whole list, field name or '', message), shown below the table and as
        the offending cell's tooltip."""
        for editors in self._rows:
            for editor in editors:
                editor.set_issue("")
        lines = []
        names = [f.name for f in self.link.fields]
        for row, field_name, message in issues:
            if row is None:
                lines.append(message)
                continue
            lines.append(f"Row {row + 1}: {message}")
            if 0 <= row < len(self._rows) and field_name in names:
                self._rows[row][names.index(field_name)].set_issue(message)
        self.messages.setText("\n".join(lines))
        self.messages.setVisible(bool(lines))
        for row in range(self.table.rowCount()):
            marked = any(issue_row == row for issue_row, _, _ in issues)
            item = QTableWidgetItem(f"{row + 1} !" if marked else str(row + 1))
            if marked:
                item.setForeground(Qt.GlobalColor.red)
                item.setToolTip("; ".join(m for r, _, m in issues if r == row))
            self.table.setVerticalHeaderItem(row, item)
        self._share_width()  # the row numbers may have grown a mark

    # --- internals --------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if watched is self.table and event.type() == QEvent.Type.Resize:
            self._share_width()
        return False

    def _minimum_width(self, spec: FieldSpec) -> int:
        metrics = self.fontMetrics()
        if spec.kind == "code":
            codes = code_list(spec.codes)
            widest = max(metrics.horizontalAdvance(codes.labels[c]) for c in codes.codes)
            return min(widest, metrics.horizontalAdvance("M" * 12)) + 40
        if spec.kind in ("edtf", "date"):
            return metrics.horizontalAdvance("2024-05-10~") + 20
        if spec.kind in ("ref", "longtext"):
            return metrics.horizontalAdvance("M" * 9) + 30
        return metrics.horizontalAdvance("M" * 5) + 20

    def _share_width(self) -> None:
        """Each column gets its minimum, and the rest of the width by weight. A table too wide for the
        form scrolls sideways rather than cutting dates and codes short."""
        # From the table's own width, not its viewport's, which shrinks and grows with the scroll bars.
        table = self.table
        row_numbers = table.verticalHeader().sizeHint().width()
        available = table.width() - 2 * table.frameWidth() - row_numbers - REMOVE_COLUMN_WIDTH
        minimums = [self._minimum_width(spec) for spec in self.link.fields]
        weights = [COLUMN_WEIGHTS.get(spec.kind, 1.0) for spec in self.link.fields]
        spare = max(0, available - sum(minimums))
        header = self.table.horizontalHeader()
        for column, (minimum, weight) in enumerate(zip(minimums, weights, strict=True)):
            header.resizeSection(column, minimum + int(spare * weight / sum(weights)))
        header.resizeSection(len(self.link.fields), REMOVE_COLUMN_WIDTH)
        overflow = sum(minimums) > available
        if overflow != self._overflow:
            self._overflow = overflow
            self._fit_height()

    def _fit_height(self) -> None:
        """The table is as tall as its rows: the form scrolls, not each table inside it."""
        rows = self.table.verticalHeader()
        height = self.table.horizontalHeader().sizeHint().height() + rows.defaultSectionSize() * len(self._rows)
        if self._overflow:
            height += self.table.horizontalScrollBar().sizeHint().height()
        self.table.setFixedHeight(height + 2 * self.table.frameWidth())
        self.table.setVisible(bool(self._rows))
        self.empty_label.setVisible(not self._rows)

    @Slot()
    def _add_clicked(self) -> None:
        editors = self.add_row()
        self.rows_changed.emit()
        self.changed.emit()
        editors[0].control.setFocus(Qt.FocusReason.OtherFocusReason)

    @Slot()
    def _remove_clicked(self) -> None:
        button = self.sender()
        if button in self._remove_buttons:
            row = self._remove_buttons.index(button)
            self.remove_row(row)
            # Keep the keyboard where the user is: on the next row's remove button, or the Add button.
            target = self._remove_buttons[row] if row < len(self._remove_buttons) else self.add_button
            target.setFocus(Qt.FocusReason.OtherFocusReason)
