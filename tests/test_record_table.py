"""RecordTableView paints its rows itself, for speed: a curator must see exactly what Qt's own table paint shows."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication, QScrollArea, QStyle, QStyleOptionSlider, QTableView

from gui.app import create_application
from gui.record_table import LAY_OUT_AFTER, RecordTableView
from gui.table_model import RecordTableModel
from models import services


class QtPainted(RecordTableView):
    """The same view, painted by QTableView's own paint: the reference."""

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        QTableView.paintEvent(self, event)


def _arrange(view: RecordTableView, model: RecordTableModel, scenario: str) -> None:
    view.setModel(model)
    view.resize(760, 330)
    view.show()
    view.selectRow(2)
    if scenario == "elided":
        for column in range(model.columnCount()):
            view.setColumnWidth(column, 45)
        view.setColumnWidth(0, 16)  # even the numbers of the right-aligned id column are cut short
    elif scenario == "scrolled and rearranged":
        view.horizontalHeader().moveSection(1, 4)
        view.horizontalHeader().hideSection(2)
        view.scrollTo(model.index(40, model.columnCount() - 1))
        view.selectRow(44)
    elif scenario == "switched to another record type":  # other columns, other texts, the same view
        model.set_record_type("missions")
        view.selectRow(1)
    elif scenario == "at the end":
        view.scrollToBottom()
    if scenario == "focused":
        view.activateWindow()
        view.setFocus()
    QApplication.processEvents()


def _painted(view_class: type[RecordTableView], model: RecordTableModel, scenario: str, qtbot) -> list[QImage]:
    """The view's first paint, its second, and one after every text on screen has been laid out (RecordTableView
    draws a text directly at first, and from its laid-out glyphs once it has drawn it LAY_OUT_AFTER times)."""
    view = view_class()
    qtbot.addWidget(view)
    view.setUpdatesEnabled(False)  # no paint before the first grab
    _arrange(view, model, scenario)
    view.setUpdatesEnabled(True)
    images = [view.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
              for _ in range(LAY_OUT_AFTER + 1)]
    view.close()
    return [images[0], images[1], images[-1]]


def _differing_pixels(ours: list[QImage], reference: list[QImage]) -> list[int]:
    """For each paint: how many pixels differ from Qt's paint."""
    counts = []
    for first, second in zip(ours, reference, strict=True):
        assert first.size() == second.size()
        counts.append(sum(first.pixel(x, y) != second.pixel(x, y)
                          for y in range(first.height()) for x in range(first.width())))
    return counts


@pytest.mark.parametrize("scenario", ["focused", "unfocused", "elided", "scrolled and rearranged",
                                      "switched to another record type"])
def test_rows_look_exactly_as_qt_paints_them(seeded_db, qtbot, scenario):
    create_application()  # PaxDesk's style, palette, fonts and style sheet
    model = RecordTableModel("actors", background=False)
    ours = _painted(RecordTableView, model, scenario, qtbot)
    reference = _painted(QtPainted, model, scenario, qtbot)
    assert _differing_pixels(ours, reference) == [0, 0, 0]


def test_a_row_deleted_meanwhile_reads_deleted(seeded_db, qtbot):
    create_application()
    services.create_record("actors", {"name": "A contact group nobody cites", "kind": "group_of_states"})
    model = RecordTableModel("actors", background=False)  # the new actor last, in a block not read yet
    last = model.rowCount() - 1
    services.delete_record("actors", model.record_id(last))
    ours = _painted(RecordTableView, model, "at the end", qtbot)
    reference = _painted(QtPainted, model, "at the end", qtbot)
    assert model.row_texts(last)[0] == "(deleted)"
    assert model.data(model.index(last, 0)) == "(deleted)"
    assert _differing_pixels(ours, reference) == [0, 0, 0]


def test_the_table_has_paxdesks_flat_scroll_bars_wherever_it_is_shown(qtbot):
    """Fusion's bevelled scroll bars cost more to paint than a screenful of rows; the table brings PaxDesk's flat
    ones (12 pixels wide, no arrow buttons) even outside the main window, and they match the application's."""
    view = RecordTableView()
    qtbot.addWidget(view)
    bars = [view.verticalScrollBar(), view.horizontalScrollBar()]
    assert [bars[0].sizeHint().width(), bars[1].sizeHint().height()] == [12, 12]
    option = QStyleOptionSlider()
    bars[0].resize(12, 300)
    bars[0].initStyleOption(option)
    arrow = bars[0].style().subControlRect(QStyle.ComplexControl.CC_ScrollBar, option,
                                           QStyle.SubControl.SC_ScrollBarAddLine, bars[0])
    assert arrow.height() == 0
    create_application()
    form = QScrollArea()  # a scroll bar elsewhere in the window: a form's
    qtbot.addWidget(form)
    assert form.verticalScrollBar().sizeHint().width() == 12
