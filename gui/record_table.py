"""RecordTableView: the main window's table of records, painted in one pass over the model's cached texts.

QTableView paints a cell by asking the model for its index and then its data: two calls from C++ into Python per
cell, for every cell on screen at every paint, which made a screenful of a RecordTableModel paint 1.6 times as
slowly as the same rows of QSqlQueryModel. For a RecordTableModel this view draws what the stock paint draws
(row backgrounds, alternating colours, selection, texts aligned and elided with the delegate's margins, grid, the
focus frame) from the model's texts directly, so a paint costs a few calls per row instead of two per cell
(benchmarks/bench_table_model.py). Any other model is painted by QTableView itself.
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractItemModel, QEvent, QPointF, QRect, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPaintEvent, QPalette, QPen, QStaticText, QTransform
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QStyle,
    QStyleOptionFocusRect,
    QStyleOptionViewItem,
    QTableView,
    QWidget,
)

from gui.app import scroll_bar_style
from gui.table_model import RecordTableModel

RIGHT_ALIGNED = int(Qt.AlignmentFlag.AlignRight)
TEXT_CACHE_SIZE = 20_000  # texts measured (and laid out) kept per view
# Laying a text out (a QStaticText) costs ~25 µs and saves ~2.5 µs at each later draw of a short cell text: it pays
# once a text has been drawn this many times (benchmarks/bench_table_model.py: first paint, paints that follow).
LAY_OUT_AFTER = 8


class RecordTableView(QTableView):
    """A read-only table of whole rows (edits go through the record form), one selected at a time."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._texts = _Texts(self)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 12)
        # Fusion's bevelled scroll bar took longer to paint than a screenful of rows (see scroll_bars.qss).
        for bar in (self.verticalScrollBar(), self.horizontalScrollBar()):
            bar.setStyleSheet(scroll_bar_style())

    def setModel(self, model: QAbstractItemModel | None) -> None:  # noqa: N802 - Qt's name
        super().setModel(model)  # gives the model to the headers too
        self._title_header_from(model)

    def setHorizontalHeader(self, header: QHeaderView) -> None:  # noqa: N802
        super().setHorizontalHeader(header)
        self._title_header_from(self.model())

    def _title_header_from(self, model: QAbstractItemModel | None) -> None:
        """The column header reads a RecordTableModel's titles from its header model: no call into Python."""
        if isinstance(model, RecordTableModel):
            self.horizontalHeader().setModel(model.header_model)

    def paintEvent(self, event: QPaintEvent) -> None:
        model = self.model()
        # Right-to-left layouts, hidden rows and dashed grids are left to QTableView: PaxDesk's window has none.
        # So is a header that has not caught up with the model's columns yet.
        if not isinstance(model, RecordTableModel) or self.isRightToLeft() or self.verticalHeader().sectionsHidden() \
                or self.gridStyle() != Qt.PenStyle.SolidLine or self.horizontalHeader().count() != model.columnCount():
            super().paintEvent(event)
            return
        painter = QPainter(self.viewport())
        try:
            self._paint(painter, event.rect(), model)
        finally:
            painter.end()

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._texts.clear()
        super().changeEvent(event)

    def _paint(self, painter: QPainter, dirty: QRect, model: RecordTableModel) -> None:
        rows, columns = self.verticalHeader(), self.horizontalHeader()
        if rows.count() == 0 or columns.count() == 0:
            return
        # The area the rows and columns cover, as QTableView clips it.
        dirty = dirty.intersected(QRect(0, 0, columns.length() - columns.offset(), rows.length() - rows.offset()))
        top, bottom = rows.visualIndexAt(dirty.top()), rows.visualIndexAt(dirty.bottom())
        if dirty.isEmpty() or top < 0:
            return
        bottom = rows.count() - 1 if bottom < 0 else bottom
        left, right = columns.visualIndexAt(dirty.left()), columns.visualIndexAt(dirty.right())
        left = 0 if left < 0 else left
        right = columns.count() - 1 if right < 0 else right

        option = QStyleOptionViewItem()
        self.initViewItemOption(option)
        grid = 1 if self.showGrid() else 0
        # The stock delegate's text rectangle: the cell less this margin on either side.
        margin = self.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, self) + 1
        cells = [(columns.sectionViewportPosition(c), columns.sectionSize(c) - grid, c)
                 for c in map(columns.logicalIndex, range(left, right + 1)) if not columns.isSectionHidden(c)]
        # Per column: where its text starts, the room it has, whether it hugs the right edge, and which it is.
        shown = [(x + margin, width - 2 * margin, model.alignment(c) & RIGHT_ALIGNED, c) for x, width, c in cells]
        palette = option.palette
        text_pen = QPen(palette.color(QPalette.ColorRole.Text))
        selected_pen = QPen(palette.color(QPalette.ColorRole.HighlightedText))
        selected_brush = palette.brush(QPalette.ColorRole.Highlight)
        alternate_brush = palette.brush(QPalette.ColorRole.AlternateBase) if self.alternatingRowColors() else None
        selected = self._selected_rows(top, bottom)
        draw_text, line_height = self._texts.draw, self._texts.line_height
        current = self.currentIndex()
        focus_row = current.row() if self.hasFocus() or self.viewport().hasFocus() else -1
        painter.setFont(self.font())
        for row in range(top, bottom + 1):
            y, height = rows.sectionViewportPosition(row), rows.sectionSize(row) - grid
            if row in selected:
                painter.fillRect(QRect(dirty.left(), y, dirty.width(), height), selected_brush)
                painter.setPen(selected_pen)
            else:
                if alternate_brush is not None and row % 2:
                    painter.fillRect(QRect(dirty.left(), y, dirty.width(), height), alternate_brush)
                painter.setPen(text_pen)
            texts = model.row_texts(row)
            line_top = y + (height - line_height) // 2
            for x, room, right_aligned, column in shown:
                text = texts[column]
                if text:
                    draw_text(painter, text, x, line_top, room, right_aligned)
            if row == focus_row:
                self._paint_focus(painter, option, current.column(), y, height, grid)

        if grid:
            # One pixel under each row and right of each column, where QTableView draws its grid lines.
            hint = self.style().styleHint(QStyle.StyleHint.SH_Table_GridLineColor, option, self)
            colour = QColor.fromRgba(hint & 0xFFFFFFFF)
            for row in range(top, bottom + 1):
                line_y = rows.sectionViewportPosition(row) + rows.sectionSize(row) - grid
                painter.fillRect(QRect(dirty.left(), line_y, dirty.width(), 1), colour)
            for x, width, _column in cells:
                painter.fillRect(QRect(x + width, dirty.top(), 1, dirty.height()), colour)

    def _selected_rows(self, top: int, bottom: int) -> set[int]:
        """The rows between top and bottom that are selected (rows are selected whole)."""
        selection = self.selectionModel()
        found: set[int] = set()
        if selection is not None:
            for selected in selection.selection():
                if selected.parent() == self.rootIndex():
                    found.update(range(max(selected.top(), top), min(selected.bottom(), bottom) + 1))
        return found

    def _paint_focus(self, painter: QPainter, option: QStyleOptionViewItem, column: int, y: int, height: int,
                     grid: int) -> None:
        """The keyboard focus frame around the current cell, as the style draws it for the stock delegate."""
        columns = self.horizontalHeader()
        if column < 0 or columns.isSectionHidden(column):
            return
        frame = QStyleOptionFocusRect()
        frame.initFrom(self)
        frame.rect = QRect(columns.sectionViewportPosition(column), y, columns.sectionSize(column) - grid, height)
        frame.state |= QStyle.StateFlag.State_KeyboardFocusChange | QStyle.StateFlag.State_Selected
        frame.backgroundColor = option.palette.color(QPalette.ColorRole.Highlight)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_FrameFocusRect, frame, painter, self)


class _Texts:
    """The texts of one view, measured and laid out for painting in its font. A text is measured once (for its
    alignment and to know whether it fits). It is drawn directly until it has been drawn LAY_OUT_AFTER times, and
    then from its laid-out glyphs (a QStaticText), which draw faster: the texts of a column repeat from row to
    row and from paint to paint, but laying one out costs several direct draws, and a view's first paint meets
    every text for the first time. A text wider than its cell is cut short with "…" and drawn from the left, as
    the delegate does."""

    def __init__(self, view: QTableView):
        self._view = view
        # text → [glyphs (None until laid out), advance, direct draws]; (text, room) → [glyphs of the cut text]
        self._known: dict[str | tuple[str, int], list] = {}
        self.clear()

    def clear(self) -> None:
        """Forget every layout: the view's font or style changed."""
        self._known.clear()
        self._font = self._view.font()
        self._metrics = QFontMetricsF(self._font)
        self._ascent = self._metrics.ascent()
        self.line_height = round(self._metrics.height())  # the delegate centres a line box of whole pixels

    def draw(self, painter: QPainter, text: str, x: int, top: int, room: int, right_aligned: int) -> None:
        """Draw `text` in the box of one line at (x, top), `room` pixels wide."""
        known = self._known.get(text)
        if known is None:
            if len(self._known) > TEXT_CACHE_SIZE:
                self._known.clear()
            known = self._known[text] = [None, self._metrics.horizontalAdvance(text), 0]
        glyphs, advance = known[0], known[1]
        if advance > room:
            painter.drawStaticText(QPointF(x, top), self._shortened(text, room))
            return
        if glyphs is None:
            known[2] += 1
            if known[2] < LAY_OUT_AFTER:
                painter.drawText(QPointF(x + room - advance if right_aligned else x, top + self._ascent), text)
                return
            glyphs = known[0] = self._laid_out(text)
        painter.drawStaticText(QPointF(x + room - advance if right_aligned else x, top), glyphs)

    def _shortened(self, text: str, room: int) -> QStaticText:
        key = (text, room)
        known = self._known.get(key)
        if known is None:
            shortened = self._view.fontMetrics().elidedText(text, self._view.textElideMode(), room)
            known = self._known[key] = [self._laid_out(shortened)]
        return known[0]

    def _laid_out(self, text: str) -> QStaticText:
        glyphs = QStaticText(text)
        glyphs.setTextFormat(Qt.TextFormat.PlainText)
        glyphs.prepare(QTransform(), self._font)
        return glyphs
