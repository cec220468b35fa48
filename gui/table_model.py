"""RecordTableModel: one lazy table model for every record type, fed by models.queries.RecordQuery.

It keeps the ordered ids of the view (8 bytes a row) and a bounded LRU cache of display rows fetched
in blocks for the rows on screen, so a million rows open at once and memory stays flat. The first block
is read with a LIMIT query and shown immediately; the full id list, which needs the whole filter and
sort, is read in a worker thread and appended when it arrives.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QModelRoleDataSpan,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import QStandardItem, QStandardItemModel

from gui.tasks import BackgroundTask
from models.dates import humanise
from models.dialect import READ_ERRORS, TooSlow, first_line, time_limit
from models.progress import Progress
from models.queries import Column, RecordQuery
from models.records import record_type

Index = QModelIndex | QPersistentModelIndex
Entry = tuple[tuple, tuple[str | None, ...]]  # display values (id, version, columns…) and the texts shown
NUMERIC = ("int", "float")
DISPLAY, TOOLTIP = int(Qt.ItemDataRole.DisplayRole), int(Qt.ItemDataRole.ToolTipRole)
ALIGNMENT, USER = int(Qt.ItemDataRole.TextAlignmentRole), int(Qt.ItemDataRole.UserRole)
HORIZONTAL = Qt.Orientation.Horizontal
LEFT = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
DELETED = "(deleted)"  # the first cell of a row deleted since the view's ids were read
UNREAD = "(not read)"  # the first cell of a row the database would not give (the status bar says why)


class RecordTableModel(QAbstractTableModel):
    """Rows of one record type, filtered and sorted in SQL; `loaded` fires once the row count is final."""

    loaded = Signal()  # every id of the view is known: rowCount() is the real count
    failed = Signal(str)  # reading the view failed; a message for the user

    BLOCK = 50  # rows per fetch: about two screenfuls
    CACHE_BLOCKS = 160  # at most 8,000 display rows in memory
    ID_READ_DELAY_MS = 30
    # A new search, filter or sort whose first rows take longer than this to read (they may need every row: a
    # million contributions sorted by total take ~130 ms) is read in the background, the window showing the rows
    # of the previous one meanwhile.
    FIRST_BLOCK_TIME_LIMIT_S = 0.04

    def __init__(self, key: str = "mediation-events", parent: QObject | None = None, *, background: bool = True):
        super().__init__(parent)
        self._background = background
        self._query = RecordQuery(key)
        self._shown: RecordQuery | None = None  # the query whose rows are shown (the newest one's may be coming)
        self._columns: list[Column] = self._query.columns
        self._alignment: list[int] = []
        # The column titles, kept in a C++ model: a header reading them from there asks nothing of Python. A
        # header asks ~15 questions a column at each reset and paint; answering them here took ~0.3 ms of the
        # ~10 ms of processor time of a view's first rows (median of three runs of 151 first paints each).
        self._header = QStandardItemModel(self)
        self._header_titles: list[tuple[str, str]] = []
        self._ids = array("q")
        self._cache: OrderedDict[int, list[Entry | None]] = OrderedDict()
        self._names: list[str] = []
        self._formats: list[Any] = []
        self._complete = True
        self._task: BackgroundTask | None = None
        self._id_timer = QTimer(self, singleShot=True, interval=self.ID_READ_DELAY_MS)
        self._id_timer.timeout.connect(self._read_ids)
        self._finished_tasks: list[BackgroundTask] = []
        self._retired: list[array] = []  # id lists of earlier views, released off the GUI thread
        self.reload()

    # --- what the view shows ----------------------------------------------------------------------
    @property
    def key(self) -> str:
        return self._query.key

    @property
    def query(self) -> RecordQuery:
        """The query behind the view (search, filters, sort), e.g. for "Export current view"."""
        return self._query

    @property
    def columns(self) -> list[Column]:
        return list(self._columns)

    @property
    def is_complete(self) -> bool:
        """True once every id of the view is known (small tables are complete at once)."""
        return self._complete

    @property
    def is_current(self) -> bool:
        """False while the view still shows the rows of its previous search, filter or sort (see reload)."""
        return self._shown is self._query

    def column_index(self, name: str) -> int:
        return next(i for i, column in enumerate(self._columns) if column.name == name)

    def set_record_type(self, key: str, *, search: str = "", filters: dict[str, str] | None = None,
                        sort_column: str = "id", descending: bool = False) -> None:
        record_type(key)  # unknown keys fail here, before the view is emptied
        self._query = RecordQuery(key, search=search, filters=dict(filters or {}), sort_column=sort_column,
                                  descending=descending)
        self.reload()

    def set_search(self, text: str) -> None:
        if text != self._query.search:
            self._requery(search=text)

    def set_filters(self, filters: dict[str, str]) -> None:
        cleaned = {name: text for name, text in filters.items() if str(text).strip()}
        if cleaned != self._query.filters:
            self._requery(filters=cleaned)

    def set_filter(self, column_name: str, text: str) -> None:
        self.set_filters({**self._query.filters, column_name: text})

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self._columns):
            return
        name = self._columns[column].name
        descending = order == Qt.SortOrder.DescendingOrder
        if (name, descending) != (self._query.sort_column, self._query.descending):
            self._requery(sort_column=name, descending=descending)

    def sort_section(self) -> tuple[int, Qt.SortOrder]:
        order = Qt.SortOrder.DescendingOrder if self._query.descending else Qt.SortOrder.AscendingOrder
        return self.column_index(self._query.sort_column), order

    def _requery(self, **changes: Any) -> None:
        q = self._query
        values = {"search": q.search, "filters": dict(q.filters), "sort_column": q.sort_column,
                  "descending": q.descending, **changes}
        self._query = RecordQuery(q.key, **values)
        self.reload()

    # --- loading ----------------------------------------------------------------------------------
    @Slot()
    def reload(self) -> None:
        """Read the view again: the first block now, the rest of the ids in the background. A new search, filter
        or sort whose first block is slow to read is read in the background too, showing the rows of the previous
        one until then."""
        self.cancel_loading()
        query = self._query
        if self._background and self._shown is not None and self._shown.key == query.key:
            try:
                with time_limit(self.FIRST_BLOCK_TIME_LIMIT_S):
                    first = query.display_page(0, self.BLOCK)
            except TooSlow:
                self._complete = False
                block = self.BLOCK  # the work must not hold the model (see _start_task)
                self._start_task(lambda progress: query.display_page(0, block), self._first_block_read)
                return
        else:
            first = query.display_page(0, self.BLOCK)
        self._show(query, first)

    def _show(self, query: RecordQuery, first: list[tuple]) -> None:
        self.beginResetModel()
        self._shown = query
        self._columns = query.columns
        self._alignment = [RIGHT if c.spec is None or c.spec.kind in NUMERIC else LEFT for c in self._columns]
        self._set_titles([(c.label, c.spec.help if c.spec is not None and c.spec.help else c.label)
                          for c in self._columns])
        self._names = ["id", "version", *(c.name for c in self._columns if c.spec is not None)]
        self._formats = [_text_format(c) for c in self._columns]
        self._unread: Entry = ((), (UNREAD, *[None] * (len(self._columns) - 1)))
        # Freeing a million ids takes the GUI thread ~4 ms (the pages go back to the system): the old list is
        # handed to the next background read instead, which releases it after the new rows are painted.
        self._retired.append(self._ids)
        self._ids = array("q", (row[0] for row in first))
        self._cache.clear()
        self._store(0, first)
        self._complete = len(first) < self.BLOCK
        self.endResetModel()
        if self._complete:
            QTimer.singleShot(self.ID_READ_DELAY_MS, self._release_retired)  # after the paint, as above
            self.loaded.emit()
        elif self._background:
            # Start after the first rows are painted: on a busy machine the read would compete with that paint.
            self._id_timer.start()
        else:
            self._retired.clear()
            self._take_ids(query.id_array())

    def _set_titles(self, titles: list[tuple[str, str]]) -> None:
        """Column titles and their tooltips into header_model; a search, filter or sort keeps the columns, and
        leaves the header alone. Columns come and go at the end, as a header of this model would have them."""
        if titles == self._header_titles:
            return
        self._header_titles = titles
        self._header.setColumnCount(len(titles))
        for section, (title, tip) in enumerate(titles):
            item = QStandardItem(title)
            item.setToolTip(tip)
            item.setData(LEFT, ALIGNMENT)
            self._header.setHorizontalHeaderItem(section, item)

    @Slot()
    def _release_retired(self) -> None:
        if self._complete and self._task is None:  # else a background read took them over
            self._retired.clear()

    @Slot()
    def _read_ids(self) -> None:
        query = self._query
        retired, self._retired = self._retired, []

        def work(progress: Progress) -> array:
            retired.clear()
            ids = query.id_array()
            progress.check()  # a newer view took over: its result is not wanted
            return ids

        self._start_task(work, self._ids_read)

    def _start_task(self, work: Callable[[Progress], Any], on_finished: Callable[[Any], None]) -> None:
        # Tasks that ended at an earlier reload have long left their worker thread: release them here, never
        # from their own signals (deleting a task from its signal can free it while its thread still runs).
        for old in self._finished_tasks:
            old.setParent(None)
        self._finished_tasks.clear()
        # Bound slots, not lambdas, and work that does not hold the model: either would keep the model alive
        # through its own child task.
        task = BackgroundTask(work, self)
        task.finished.connect(on_finished)
        task.failed.connect(self._read_failed)
        for signal in (task.finished, task.failed, task.cancelled):
            signal.connect(self._task_ended)
        self._task = task
        task.start()

    @Slot()
    def _task_ended(self) -> None:
        self._finished_tasks.append(self.sender())

    @Slot(object)
    def _first_block_read(self, first: list[tuple]) -> None:
        if self.sender() is self._task:  # else a newer search, filter or sort took over meanwhile
            self._task = None
            self._show(self._query, first)

    @Slot(object)
    def _ids_read(self, ids: array) -> None:
        if self.sender() is self._task:
            self._take_ids(ids)

    @Slot(str)
    def _read_failed(self, message: str) -> None:
        if self.sender() is self._task:  # the rows shown stay; the window says why nothing newer came
            self._task = None
            self._complete = True
            self.failed.emit(message)
            self.loaded.emit()

    def cancel_loading(self) -> None:
        """Stop reading in the background (a new view, a new database, the window closing)."""
        self._id_timer.stop()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _take_ids(self, ids: array) -> None:
        self._task = None
        prefix = len(self._ids)
        if ids[:prefix] == self._ids:
            if len(ids) > prefix:
                self.beginInsertRows(QModelIndex(), prefix, len(ids) - 1)
                self._ids = ids
                self.endInsertRows()
        else:  # the data changed between the two reads: show the newer state whole
            self.beginResetModel()
            self._ids = ids
            self._cache.clear()
            self.endResetModel()
        self._complete = True
        self.loaded.emit()

    def wait_until_loaded(self, timeout_ms: int = 60_000) -> bool:
        """Block (processing events) until the rows of the newest search, filter and sort are shown and their
        count is final; for the command line and tests."""
        from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QThread

        deadline = QDeadlineTimer(timeout_ms)
        while not self._complete and not deadline.hasExpired():
            QCoreApplication.processEvents()
            QThread.msleep(2)
        return self._complete

    # --- rows and ids -----------------------------------------------------------------------------
    def record_id(self, row: int) -> int | None:
        return self._ids[row] if 0 <= row < len(self._ids) else None

    def row_of(self, record_id: int) -> int:
        """The row showing `record_id`, or -1 (also while the ids are still being read)."""
        try:
            return self._ids.index(record_id)
        except ValueError:
            return -1

    def record(self, row: int) -> dict[str, Any] | None:
        """The display row (values by field name, plus id and version); None if deleted meanwhile."""
        entry = self._entry(row)
        return dict(zip(self._names, entry[0], strict=True)) if entry is not None and entry[0] else None

    def row_texts(self, row: int) -> tuple[str | None, ...]:
        """The text shown in each column of `row` (None: an empty cell), as data() gives it for DisplayRole."""
        entry = self._entry(row)
        if entry is not None:
            return entry[1]
        return (DELETED, *[None] * (len(self._columns) - 1)) if 0 <= row < len(self._ids) else \
            (None,) * len(self._columns)

    def alignment(self, column: int) -> int:
        """The TextAlignmentRole of the column's cells."""
        return self._alignment[column]

    def _entry(self, row: int) -> Entry | None:
        block = row // self.BLOCK
        rows = self._cache.get(block)
        if rows is None:
            if not 0 <= row < len(self._ids):
                return None
            rows = self._fetch_block(block)
        else:
            self._cache.move_to_end(block)
        return rows[row - block * self.BLOCK]

    def _fetch_block(self, block: int) -> list[Entry | None]:
        ids = list(self._ids[block * self.BLOCK:(block + 1) * self.BLOCK])
        try:
            found = {values[0]: values for values in self._query.display_rows(ids)}
        except READ_ERRORS as exc:
            # Blocks are read while the view paints, where an exception would only reach the console: the rows
            # show as unread until the view is read again, and `failed` tells the window why.
            self._cache[block] = [self._unread] * len(ids)
            self.failed.emit(first_line(exc))
            return self._cache[block]
        self._store(block, [found.get(record_id) for record_id in ids])  # None: deleted since the ids were read
        return self._cache[block]

    def _store(self, block: int, rows: list[tuple | None]) -> None:
        # Texts are formatted once per block, not at every paint; the view's paint only indexes tuples. Column by
        # column: one comprehension a column costs less than a loop over every cell (first paint).
        present = [values for values in rows if values is not None]
        columns = list(zip(*present, strict=True))
        text_columns = []
        for position, form in enumerate(self._formats if present else ()):
            column = columns[position + 1] if position else columns[0]  # values: id, version, then the columns
            if form is None:
                text_columns.append([None if value is None or value == "" else
                                     value if value.__class__ is str else str(value) for value in column])
            else:
                text_columns.append([None if value is None or value == "" else form(value) for value in column])
        texts = iter(zip(*text_columns, strict=True))
        self._cache[block] = [None if values is None else (values, next(texts)) for values in rows]
        while len(self._cache) > self.CACHE_BLOCKS:
            self._cache.popitem(last=False)

    def cached_rows(self) -> int:
        return sum(len(rows) for rows in self._cache.values())

    # --- Qt model interface -----------------------------------------------------------------------
    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        # Qt's own index() asks rowCount() and columnCount(): two calls into Python per painted cell, not one.
        if 0 <= row < len(self._ids) and 0 <= column < len(self._columns) and not parent.isValid():
            return self.createIndex(row, column)
        return QModelIndex()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index: Index, role: int = DISPLAY) -> Any:
        if role == DISPLAY or role == TOOLTIP:
            column = index.column()
            if not 0 <= column < len(self._columns):
                return None
            text = self.row_texts(index.row())[column]  # deleted and unread rows read as row_texts says
            if role == TOOLTIP:
                return text if text is not None and len(text) > 40 else None
            return text
        if role == ALIGNMENT:
            return self._alignment[index.column()] if 0 <= index.column() < len(self._alignment) else None
        if role == USER:
            return self.record_id(index.row())
        return None

    def multiData(self, index: Index, roleDataSpan: QModelRoleDataSpan) -> None:  # noqa: N803 - Qt's name
        # Views ask for ~9 roles per cell when painting; answering them in one call instead of nine keeps a
        # paint of a full screen of cells cheap. Every call into Qt costs here, so the cached texts are reached
        # with plain indexing and the delegate's span gets exactly two calls besides its checks.
        row, column = index.row(), index.column()
        block = self.BLOCK
        rows = self._cache.get(row // block)
        entry = rows[row % block] if rows is not None else self._entry(row)
        texts = entry[1] if entry is not None else self.row_texts(row)
        text = texts[column] if 0 <= column < len(texts) else None
        if len(roleDataSpan) == 7:  # QStyledItemDelegate's request: alignment 2nd, display 6th
            alignment, display = roleDataSpan[1], roleDataSpan[5]
            if alignment.role() == ALIGNMENT and display.role() == DISPLAY and 0 <= column < len(self._alignment):
                alignment.setData(self._alignment[column])
                # Always set or clear: the delegate may hand the same span over from the previous cell. The
                # other roles of the span are never set here, so they need no clearing.
                if text is not None:
                    display.setData(text)
                else:
                    display.clearData()
                return
        if not 0 <= column < len(self._alignment):
            return
        for role_data in roleDataSpan:
            role = role_data.role()
            if role == DISPLAY and text is not None:
                role_data.setData(text)
            elif role == ALIGNMENT:
                role_data.setData(self._alignment[column])
            else:
                role_data.clearData()

    @property
    def header_model(self) -> QStandardItemModel:
        """The column titles as a model of no rows, for a horizontal header (RecordTableView gives it to its own);
        it changes with the columns, within this model's reset."""
        return self._header

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = DISPLAY) -> Any:
        # For views whose header asks this model; it has no row titles.
        return self._header.headerData(section, orientation, role) if orientation == HORIZONTAL else None

    # flags() is not overridden: the C++ default (enabled, selectable, no children) is what every row needs,
    # and views ask for it once per painted cell.


def _text_format(column: Column):
    """How one column's display value becomes its text; None: shown as it is."""
    kind = column.spec.kind if column.spec is not None else "id"
    if kind in NUMERIC:
        return lambda value: (f"{value:,}" if isinstance(value, int) else f"{value:g}" if isinstance(value, float)
                              else str(value))
    if kind == "date":
        return lambda value: humanise(str(value))  # an exact date reads like the EDTF ones: "31 May 2024"
    return None
