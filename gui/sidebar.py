"""The navigation sidebar: record types grouped as Mediation, Peacekeeping and Reference, with row counts."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from gui.app import icon
from models.records import GROUPS, RECORD_TYPES

KEY_ROLE = Qt.ItemDataRole.UserRole
COUNT_ROLE = Qt.ItemDataRole.UserRole + 1


class Sidebar(QTreeWidget):
    """One item per record type under its group's heading; `view_selected` carries the record type key."""

    view_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("Sidebar")
        self.setColumnCount(2)
        self.setHeaderHidden(True)
        self.setRootIsDecorated(False)
        self.setItemsExpandable(False)
        self.setIndentation(0)
        self.setIconSize(QSize(18, 18))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAccessibleName("Record types")
        self.setMinimumWidth(200)
        self.header().setStretchLastSection(False)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self._items: dict[str, QTreeWidgetItem] = {}
        for group in GROUPS:
            heading = QTreeWidgetItem(self, [group.upper(), ""])
            heading.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = QFont(self.font())
            font.setBold(True)
            font.setPointSizeF(font.pointSizeF() * 0.82)
            font.setLetterSpacing(QFont.SpacingType.PercentageSpacing, 108)
            heading.setFont(0, font)
            heading.setForeground(0, QBrush(QColor("#6b7682")))
            heading.setSizeHint(0, QSize(0, 30))
            for spec in RECORD_TYPES.values():
                if spec.group != group:
                    continue
                item = QTreeWidgetItem(heading, [spec.label, ""])
                item.setIcon(0, icon(spec.key))
                item.setData(0, KEY_ROLE, spec.key)
                item.setToolTip(0, spec.description)
                item.setTextAlignment(1, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setForeground(1, QBrush(QColor("#7a8590")))
                self._items[spec.key] = item
        self.expandAll()
        self.currentItemChanged.connect(self._current_changed)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(230, 400)

    @property
    def current_key(self) -> str | None:
        item = self.currentItem()
        return item.data(0, KEY_ROLE) if item is not None else None

    def select(self, key: str) -> None:
        """Show `key` as the current view (emits view_selected when it changes)."""
        self.setCurrentItem(self._items[key])

    def item(self, key: str) -> QTreeWidgetItem:
        return self._items[key]

    def set_counts(self, counts: dict[str, int]) -> None:
        for key, count in counts.items():
            if key in self._items:
                item = self._items[key]
                item.setData(1, COUNT_ROLE, count)
                item.setText(1, compact_count(count))
                item.setToolTip(1, f"{count:,} {RECORD_TYPES[key].label.lower()}")

    def count(self, key: str) -> int | None:
        return self._items[key].data(1, COUNT_ROLE)

    @Slot(QTreeWidgetItem, QTreeWidgetItem)
    def _current_changed(self, current: QTreeWidgetItem | None, previous: QTreeWidgetItem | None) -> None:
        key = current.data(0, KEY_ROLE) if current is not None else None
        if key:
            self.view_selected.emit(key)


def compact_count(count: int) -> str:
    """12,345 → '12k', 1,000,000 → '1.0M': the sidebar stays narrow; the tooltip has the exact figure."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 10_000:
        return f"{count // 1000}k"
    return f"{count:,}"
