"""One editor widget per field kind of the record catalogue (text, counts, codes, references, dates…),
shared by the record form's fields and the cells of its link tables."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel, QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QCompleter,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSizePolicy,
    QSpinBox,
    QWidget,
)

from models.codes import code_list
from models.dates import DateError, humanise, normalise_edtf, parse_exact_date
from models.queries import choices
from models.reconcile import describe_miss, match_record
from models.records import FieldSpec, record_type

HINT_STYLE = "color: palette(placeholder-text);"
# Far more names than any reference list PaxDesk holds; combo boxes stay responsive well beyond this.
MAX_CHOICES = 20_000
ID_ROLE = Qt.ItemDataRole.UserRole
NARROW_KINDS = ("int", "float", "date", "edtf")


class _WheelGuard(QObject):
    """Scrolling the form must not change a spin box or combo box the pointer happens to cross."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            event.ignore()
            return True
        return False


_wheel_guard = _WheelGuard()


def _guard_wheel(widget: QWidget) -> None:
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    widget.installEventFilter(_wheel_guard)


class RefChoices(QObject):
    """The names of the records a reference can point to, one shared item model per record type, so the
    dozens of reference combo boxes of a form (one per participant row…) do not each query the database."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._models: dict[str, QStandardItemModel] = {}

    def model_for(self, key: str) -> QStandardItemModel:
        if key not in self._models:
            self._models[key] = QStandardItemModel(self)
            self._fill(key)
        return self._models[key]

    def refresh(self) -> None:
        for key in self._models:
            self._fill(key)

    def _fill(self, key: str) -> None:
        rows = choices(key, "", limit=MAX_CHOICES)
        repeated = {name for name, count in Counter(str(name) for _, name in rows).items() if count > 1}
        model = self._models[key]
        model.clear()
        for record_id, name in rows:
            # Two records with one name (two contingents called the same in different missions) must
            # still be told apart when picked by name.
            text = f"{name} (#{record_id})" if str(name) in repeated else str(name)
            item = QStandardItem(text)
            item.setData(record_id, ID_ROLE)
            model.appendRow(item)


class OptionalSpinBox(QSpinBox):
    """A whole-number spin box that can also be empty: an unknown count is not zero."""

    def __init__(self, minimum: int, maximum: int, parent: QWidget | None = None):
        super().__init__(parent)
        self._empty = minimum - 1
        self.setRange(self._empty, maximum)
        self.setValue(self._empty)
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.lineEdit().setPlaceholderText("empty")

    def number(self) -> int | None:
        return None if self.value() == self._empty else self.value()

    def set_number(self, number: int | None) -> None:
        self.setValue(self._empty if number is None else number)

    def textFromValue(self, value: int) -> str:  # noqa: N802 (Qt override)
        return "" if value == self._empty else str(value)

    def valueFromText(self, text: str) -> int:  # noqa: N802 (Qt override)
        return self._empty if not text.strip() else int(text)

    def validate(self, text: str, pos: int) -> QValidator.State:
        if not text.strip():
            return QValidator.State.Acceptable
        return super().validate(text, pos)


class FieldEditor(QWidget):
    """An editor for one field: `raw()` gives what validation reads, `set_stored()` shows a database value,
    `state()` a comparable snapshot for unsaved-change detection. `compact` editors sit in table cells."""

    changed = Signal()

    def __init__(self, spec: FieldSpec, compact: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self.spec = spec
        self.compact = compact
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.control = self._build()
        self.control.setObjectName(f"field_{spec.name}")
        self.control.setAccessibleName(spec.label)
        layout.addWidget(self.control, 1)
        if not compact and spec.kind in NARROW_KINDS:  # a count or a date needs no full line; its hint sits close
            self.control.setMaximumWidth(self.control.fontMetrics().horizontalAdvance("M" * 14) + 30)
        self.hint = QLabel()
        self.hint.setStyleSheet(HINT_STYLE)
        self.hint.setObjectName(f"hint_{spec.name}")
        self.hint.setVisible(False)
        if not compact:
            layout.addWidget(self.hint)
            layout.addStretch(0)
        self.setFocusProxy(self.control)
        self._help = spec.help
        self._issue = ""
        self._update_tooltip()

    # --- for subclasses ---------------------------------------------------------------------------
    def _build(self) -> QWidget:
        raise NotImplementedError

    def raw(self) -> Any:
        raise NotImplementedError

    def set_stored(self, value: Any) -> None:
        raise NotImplementedError

    def state(self) -> Any:
        return self.raw()

    def capture(self) -> Any:
        """What the user sees, to put back exactly with `restore` (even input that does not validate)."""
        return self.state()

    def restore(self, captured: Any) -> None:
        self.set_stored(captured)

    def problem(self) -> str | None:
        """A message of the editor's own (a name that matches no record), overriding validation's."""
        return None

    def understood(self) -> str:
        """What the editor read the input as, shown beside it ('February 2013')."""
        return ""

    def focus_widgets(self) -> list[QWidget]:
        return [self.control]

    # --- shared -----------------------------------------------------------------------------------
    def set_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.hint.setVisible(bool(text) and not self.compact)
        self._update_tooltip()

    def set_issue(self, message: str) -> None:
        """Compact editors have no room for a message line: they carry it as their tooltip."""
        self._issue = message
        self._update_tooltip()

    def _update_tooltip(self) -> None:
        parts = [self._issue] if self._issue else []
        if self.compact and self.hint.text():
            parts.append(self.hint.text())
        if self._help:
            parts.append(self._help)
        self.control.setToolTip("\n".join(parts))

    def _emit_changed(self, *_args: Any) -> None:
        text = self.understood()
        if text or self.hint.text():
            self.set_hint(text)
        self.changed.emit()


class TextEditor(FieldEditor):
    def _build(self) -> QWidget:
        edit = QLineEdit()
        if self.spec.help and self.spec.kind == "text":
            edit.setPlaceholderText(self.spec.help)
        edit.textChanged.connect(self._emit_changed)
        return edit

    def raw(self) -> Any:
        return self.control.text()

    def set_stored(self, value: Any) -> None:
        self.control.setText("" if value is None else str(value))
        self.control.setCursorPosition(0)


class LongTextEditor(FieldEditor):
    def _build(self) -> QWidget:
        edit = QPlainTextEdit()
        edit.setTabChangesFocus(True)  # Tab moves to the next field, as everywhere else in the form
        line = edit.fontMetrics().lineSpacing()
        edit.setMinimumHeight(line * 3 + 12)
        edit.setMaximumHeight(line * 5 + 12)
        edit.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        edit.textChanged.connect(self._emit_changed)
        return edit

    def raw(self) -> Any:
        return self.control.toPlainText()

    def set_stored(self, value: Any) -> None:
        self.control.setPlainText("" if value is None else str(value))


class IntEditor(FieldEditor):
    def _build(self) -> QWidget:
        minimum = int(self.spec.minimum) if self.spec.minimum is not None else -999_999_999
        maximum = int(self.spec.maximum) if self.spec.maximum is not None else 2_000_000_000
        box = OptionalSpinBox(minimum, maximum)
        box.setMinimumWidth(box.fontMetrics().horizontalAdvance("0000000000") + 30)
        _guard_wheel(box)
        box.valueChanged.connect(self._emit_changed)
        return box

    def raw(self) -> Any:
        return self.control.number()

    def set_stored(self, value: Any) -> None:
        self.control.set_number(None if value is None else int(value))


class FloatEditor(FieldEditor):
    def _build(self) -> QWidget:
        edit = QLineEdit()
        edit.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        edit.setPlaceholderText("empty")
        edit.textChanged.connect(self._emit_changed)
        return edit

    def raw(self) -> Any:
        return self.control.text()

    def set_stored(self, value: Any) -> None:
        self.control.setText("" if value is None else repr(float(value)))
        self.control.setCursorPosition(0)

    def restore(self, captured: Any) -> None:
        self.control.setText(captured)


class BoolEditor(FieldEditor):
    def _build(self) -> QWidget:
        box = QCheckBox("Yes")
        box.toggled.connect(self._emit_changed)
        return box

    def raw(self) -> Any:
        return self.control.isChecked()

    def set_stored(self, value: Any) -> None:
        self.control.setChecked(bool(value))


class CodeEditor(FieldEditor):
    """A drop-down of the code list's labels; optional fields offer an empty choice."""

    def _build(self) -> QWidget:
        box = QComboBox()
        codes = code_list(self.spec.codes)
        if not self.spec.required:
            box.addItem("—", None)
        for code in codes.codes:
            box.addItem(codes.labels[code], code)
        box.setPlaceholderText("Choose…")
        box.setCurrentIndex(-1 if self.spec.required else 0)
        box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        box.setMinimumContentsLength(8)
        _guard_wheel(box)
        box.currentIndexChanged.connect(self._emit_changed)
        return box

    def raw(self) -> Any:
        return self.control.currentData() if self.control.currentIndex() >= 0 else None

    def set_stored(self, value: Any) -> None:
        box: QComboBox = self.control
        if value is None:
            box.setCurrentIndex(-1 if self.spec.required else 0)
            return
        index = box.findData(value)
        if index < 0:  # a code no longer in the list: show it rather than silently drop it
            box.addItem(str(value), value)
            index = box.count() - 1
        box.setCurrentIndex(index)

    def state(self) -> Any:
        return self.control.currentIndex()

    def restore(self, captured: Any) -> None:
        self.control.setCurrentIndex(captured)


class RefEditor(FieldEditor):
    """An editable combo box of record names with type-ahead on any part of the name; stores the id.
    A typed name is also matched the way import matches it (actors by alias or ISO code)."""

    def __init__(self, spec: FieldSpec, ref_choices: RefChoices, compact: bool = False,
                 parent: QWidget | None = None):
        self._choices = ref_choices
        self._resolved: dict[str, int | None] = {}
        super().__init__(spec, compact, parent)

    def _build(self) -> QWidget:
        box = QComboBox()
        box.setEditable(True)
        box.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        box.setModel(self._choices.model_for(self.spec.ref))
        box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        box.setMinimumContentsLength(10)
        completer = QCompleter(box.model(), box)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        box.setCompleter(completer)
        box.lineEdit().setPlaceholderText(f"Type to find {record_type(self.spec.ref).label.lower()}…")
        box.setCurrentIndex(-1)
        _guard_wheel(box)
        box.editTextChanged.connect(self._emit_changed)
        return box

    def _text(self) -> str:
        return self.control.currentText().strip()

    def record_id(self) -> int | None:
        text = self._text()
        if not text:
            return None
        if text not in self._resolved:
            index = self.control.findText(text, Qt.MatchFlag.MatchFixedString)  # exact, ignoring case
            if index >= 0:
                self._resolved[text] = self.control.itemData(index, ID_ROLE)
            else:
                self._resolved[text] = match_record(self.spec.ref, text)
        return self._resolved[text]

    def raw(self) -> Any:
        text = self._text()
        if not text:
            return None
        record_id = self.record_id()
        return record_id if record_id is not None else text

    def problem(self) -> str | None:
        text = self._text()
        if text and self.record_id() is None:
            return describe_miss(self.spec.ref, text)
        return None

    def set_stored(self, value: Any) -> None:
        box: QComboBox = self.control
        if value is None:
            box.setCurrentIndex(-1)
            box.setEditText("")
            return
        index = box.findData(value, ID_ROLE)
        if index >= 0:
            box.setCurrentIndex(index)
            box.setEditText(box.itemText(index))
        else:  # not among the names loaded: say which record it is rather than show nothing
            box.setCurrentIndex(-1)
            box.setEditText(f"#{value}")
        box.lineEdit().setCursorPosition(0)

    def forget_names(self) -> None:
        self._resolved.clear()

    def state(self) -> Any:
        return self._text()

    def restore(self, captured: Any) -> None:
        index = self.control.findText(captured, Qt.MatchFlag.MatchFixedString) if captured else -1
        self.control.setCurrentIndex(index)
        self.control.setEditText(captured)


class _DateTextEditor(FieldEditor):
    def _build(self) -> QWidget:
        edit = QLineEdit()
        edit.setPlaceholderText(self._placeholder())
        edit.textChanged.connect(self._emit_changed)
        return edit

    def _placeholder(self) -> str:
        raise NotImplementedError

    def raw(self) -> Any:
        return self.control.text()

    def set_stored(self, value: Any) -> None:
        if isinstance(value, dt.date):
            value = value.isoformat()
        self.control.setText("" if value is None else str(value))
        self.control.setCursorPosition(0)
        self.set_hint(self.understood())


class EdtfEditor(_DateTextEditor):
    """Partial and uncertain dates (2013-02, 2017~), with what they mean in words beside them."""

    def _placeholder(self) -> str:
        return "2024-05-10, 2013-02 or 2017~"

    def understood(self) -> str:
        text = self.control.text().strip()
        try:
            return humanise(normalise_edtf(text)) if text else ""
        except DateError:
            return ""


class DateEditor(_DateTextEditor):
    """Exact calendar dates, written as 2024-05-31 or 31/05/2024."""

    def _placeholder(self) -> str:
        return "2024-05-31 or 31/05/2024"

    def understood(self) -> str:
        text = self.control.text().strip()
        try:
            return humanise(parse_exact_date(text).isoformat()) if text else ""
        except DateError:
            return ""


EDITORS: dict[str, type[FieldEditor]] = {
    "text": TextEditor, "longtext": LongTextEditor, "int": IntEditor, "float": FloatEditor, "bool": BoolEditor,
    "code": CodeEditor, "edtf": EdtfEditor, "date": DateEditor,
}


def make_editor(spec: FieldSpec, ref_choices: RefChoices, compact: bool = False,
                parent: QWidget | None = None) -> FieldEditor:
    """The editor for a field's kind. In table cells (`compact`), long texts are single lines."""
    if spec.kind == "ref":
        return RefEditor(spec, ref_choices, compact, parent)
    if spec.kind == "longtext" and compact:
        return TextEditor(spec, compact, parent)
    return EDITORS[spec.kind](spec, compact, parent)
