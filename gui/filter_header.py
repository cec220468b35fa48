"""FilterHeader: a table header with one filter box under each column title, kept aligned with its column."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QHeaderView, QLineEdit, QTableView

FILTER_DELAY_MS = 300  # typing pauses this long before the view is filtered


class FilterHeader(QHeaderView):
    """Horizontal header whose lower part holds a QLineEdit per column; `filters_changed` carries
    {column name: text} a moment after the user stops typing (at once on Enter)."""

    filters_changed = Signal(dict)

    def __init__(self, view: QTableView):
        super().__init__(Qt.Orientation.Horizontal, view)
        self._editors: list[QLineEdit] = []
        self._names: list[str] = []
        self._padding = 6
        self.setSectionsClickable(True)
        self.setSectionsMovable(True)
        self.setHighlightSections(False)
        self.setStretchLastSection(True)
        self.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self._timer = QTimer(self, singleShot=True, interval=FILTER_DELAY_MS)
        self._timer.timeout.connect(self._emit_filters)
        self.sectionResized.connect(self._place_editors)
        self.sectionMoved.connect(self._place_editors)
        view.horizontalScrollBar().valueChanged.connect(self._place_editors)

    # --- editors ----------------------------------------------------------------------------------
    def set_columns(self, names: list[str], labels: list[str], values: dict[str, str] | None = None) -> None:
        """One filter box per column, in model order, filled with `values` (no signal)."""
        for editor in self._editors:
            editor.hide()  # at once: deleteLater waits for the event loop, and a screenshot may come first
            editor.deleteLater()
        self._editors, self._names = [], list(names)
        for name, label in zip(names, labels, strict=True):
            editor = QLineEdit(self)
            editor.setObjectName("FilterEdit")
            editor.setPlaceholderText("Filter")
            editor.setToolTip(f"Show only rows whose {label} contains this text")
            editor.setClearButtonEnabled(True)
            editor.setText((values or {}).get(name, ""))
            self._mark(editor)
            editor.textEdited.connect(self._edited)
            editor.returnPressed.connect(self._emit_filters)
            editor.installEventFilter(self)
            editor.show()
            self._editors.append(editor)
        self.updateGeometries()
        self._place_editors()

    def editor(self, name: str) -> QLineEdit:
        return self._editors[self._names.index(name)]

    def values(self) -> dict[str, str]:
        return {name: editor.text().strip() for name, editor in zip(self._names, self._editors, strict=True)
                if editor.text().strip()}

    def clear_filters(self) -> None:
        for editor in self._editors:
            editor.clear()
            self._mark(editor)
        self._emit_filters()

    @Slot()
    def _edited(self) -> None:
        self._mark(self.sender())
        self._timer.start()

    @Slot()
    def _emit_filters(self) -> None:
        self._timer.stop()
        self.filters_changed.emit(self.values())

    @staticmethod
    def _mark(editor: QLineEdit) -> None:
        # An active filter is tinted, so a curator sees at a glance why rows are missing.
        active = bool(editor.text().strip())
        if editor.property("active") != active:
            editor.setProperty("active", active)
            editor.style().unpolish(editor)
            editor.style().polish(editor)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape and watched.text():
            watched.clear()
            self._mark(watched)
            self._emit_filters()
            return True
        return super().eventFilter(watched, event)

    # --- geometry ---------------------------------------------------------------------------------
    def _editor_height(self) -> int:
        return self._editors[0].sizeHint().height() if self._editors else 0

    def sizeHint(self) -> QSize:  # noqa: N802
        size = super().sizeHint()
        if self._editors:
            size.setHeight(size.height() + self._editor_height() + self._padding)
        return size

    def updateGeometries(self) -> None:  # noqa: N802
        # The titles keep their usual height; the filter boxes live in a bottom margin of the header.
        bottom = self._editor_height() + self._padding if self._editors else 0
        self.setViewportMargins(0, 0, 0, bottom)
        super().updateGeometries()
        self._place_editors()

    @Slot()
    def _place_editors(self) -> None:
        if not self._editors:
            return
        height = self._editor_height()
        top = self.height() - height - self._padding // 2
        for logical, editor in enumerate(self._editors):
            if self.isSectionHidden(logical):
                editor.hide()
                continue
            editor.setGeometry(self.sectionViewportPosition(logical) + 2, top, self.sectionSize(logical) - 4, height)
            editor.show()

