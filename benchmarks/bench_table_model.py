"""Benchmark: PaxDesk's table (RecordTableModel in RecordTableView) against QSqlQueryModel in a QTableView, on a
table of 1,000,000 contributions.

Measures, in one process on one synthetic database file: the time from opening the table until its first rows are
painted, the time to paint the same rows again, the time until the last row is painted after a jump to the end,
the time until a text filter (contributing country contains 'kaz') shows its first rows, and for a sort by a
column without an index (total) both the time until its first rows are painted and the time the GUI thread is
held; then the process's peak memory. "Painted" means the view's first paint after the change has ended (the
event loop paints the shown window; offscreen, into its backing store). Prints each median, the QSqlQueryModel
baseline measured in the same run and the ratio.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_table_model.py [--rows 1000000] [--runs 3]
        [--order alternate|blocks]

Both views have the same size and row height. Before each measurement the previous one's pending events, deferred
deletions and garbage are cleared, so that neither side pays for the other.

PaxDesk's table has flat scroll bars (resources/scroll_bars.qss); QTableView has Fusion's, which take 2-4 ms to
paint. So that the cells and models can be compared alone, the first rows and the filter are measured a third time,
on a QSqlQueryModel whose view has PaxDesk's scroll bars too ("like for like").

The database is synthetic (generated actors, missions and monthly dates, inserted with executemany) and kept
in the temporary folder for the next run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QEvent, QObject, Qt  # noqa: E402
from PySide6.QtSql import QSqlDatabase, QSqlQueryModel  # noqa: E402
from PySide6.QtWidgets import QApplication, QTableView  # noqa: E402

from gui.app import scroll_bar_style  # noqa: E402
from models.db import open_database  # noqa: E402

PERSONNEL_TYPES = ("Troops", "Staff Officer", "Experts on Mission", "Individual Police", "Formed Police Units")
MISSION_COUNT = 40
TOP_TOTAL = 840  # the largest female + male count the generator makes (40 + 800)
ROW_HEIGHT = 30
BASELINE_SELECT = (
    "SELECT c.id, c.reporting_date, a.name, m.acronym, c.mission_note, c.personnel_type, c.female_count, "
    "c.male_count, c.total_count FROM contribution AS c JOIN actor AS a ON a.id = c.contributor_id "
    "LEFT JOIN mission AS m ON m.id = c.mission_id"
)


# --- the synthetic database ------------------------------------------------------------------------

def build_database(path: Path, rows: int) -> None:
    """Create the schema through PaxDesk, then fill it fast with executemany (synthetic data)."""
    import pycountry

    database = open_database(path)
    database.close()
    now = dt.datetime(2024, 6, 1).isoformat(sep=" ")
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous = OFF")
    with connection:
        countries = sorted(pycountry.countries, key=lambda c: c.alpha_3)
        connection.executemany(
            "INSERT INTO actor (created_at, updated_at, version, name, kind, iso3, m49, notes) "
            "VALUES (?, ?, 1, ?, 'state', ?, ?, '')",
            [(now, now, getattr(c, "common_name", None) or c.name, c.alpha_3, int(c.numeric)) for c in countries],
        )
        connection.execute("INSERT INTO actor (created_at, updated_at, version, name, kind, notes) "
                           "VALUES (?, ?, 1, 'United Nations', 'international_organisation', '')", (now, now))
        un = connection.execute("SELECT id FROM actor WHERE name = 'United Nations'").fetchone()[0]
        connection.executemany(
            "INSERT INTO mission (created_at, updated_at, version, acronym, name, lead_organisation_id, kind, "
            "host_location, headquarters, mandate_reference, active, notes) "
            "VALUES (?, ?, 1, ?, ?, ?, 'peacekeeping_operation', '', '', '', 1, '')",
            [(now, now, f"UNM{n:02d}", f"Synthetic mission {n}", un) for n in range(MISSION_COUNT)],
        )
        actor_ids = [r[0] for r in connection.execute("SELECT id FROM actor WHERE kind = 'state' ORDER BY id")]
        mission_ids = [r[0] for r in connection.execute("SELECT id FROM mission ORDER BY id")]
        connection.executemany(
            "INSERT INTO contribution (created_at, updated_at, version, reporting_date, contributor_id, "
            "mission_id, mission_note, personnel_type, female_count, male_count, total_count) "
            "VALUES (?, ?, 1, ?, ?, ?, '', ?, ?, ?, ?)",
            _contributions(rows, actor_ids, mission_ids, now),
        )
    connection.execute("ANALYZE")
    connection.close()


def _contributions(rows: int, actors: list[int], missions: list[int], now: str):
    """Monthly reports, each a distinct sample of (country, mission, personnel type): the UN's natural key."""
    generator = random.Random(1974)
    combinations = len(actors) * len(missions) * len(PERSONNEL_TYPES)
    months = max(1, -(-rows // (combinations // 8)))
    per_month = -(-rows // months)
    produced, year, month = 0, 2010, 1
    while produced < rows:
        next_month = dt.date(year + month // 12, month % 12 + 1, 1)
        reporting_date = (next_month - dt.timedelta(days=1)).isoformat()
        for combination in generator.sample(range(combinations), min(per_month, rows - produced)):
            actor, rest = divmod(combination, len(missions) * len(PERSONNEL_TYPES))
            mission, personnel = divmod(rest, len(PERSONNEL_TYPES))
            female, male = generator.randint(0, 40), generator.randint(0, 800)
            yield (now, now, reporting_date, actors[actor], missions[mission], PERSONNEL_TYPES[personnel],
                   female, male, female + male)
            produced += 1
        year, month = next_month.year, next_month.month


def database_for(rows: int) -> Path:
    folder = Path(tempfile.gettempdir()) / "paxdesk-bench"
    folder.mkdir(exist_ok=True)
    path = folder / f"contributions-{rows}.sqlite3"
    if path.exists():
        try:
            with sqlite3.connect(path) as connection:
                if connection.execute("SELECT COUNT(*) FROM contribution").fetchone()[0] == rows:
                    return path
        except sqlite3.DatabaseError:
            pass
        for stale in folder.glob(f"{path.name}*"):
            stale.unlink()
    started = time.perf_counter()
    print(f"Building {rows:,} contributions in {path} …", flush=True)
    build_database(path, rows)
    print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
    return path


# --- measuring -------------------------------------------------------------------------------------

class _PaintCounter(QObject):
    """Counts the paints of a view's viewport."""

    def __init__(self, view: QTableView):
        super().__init__(view)
        self.paints = 0
        view.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Paint:
            self.paints += 1
        return False


def _painted(view: QTableView) -> None:
    """Return once the view has laid itself out and painted its rows, as the screen would show them: the event
    loop paints the shown window (offscreen: into its backing store); should it not, the view is painted now."""
    counter = view.findChild(_PaintCounter)
    before = counter.paints
    QApplication.processEvents()
    if counter.paints == before:
        view.viewport().grab()


def _repaint(view: QTableView) -> float:
    """The time to paint the same rows again (a selection, a window uncovered, a scroll step)."""
    started = time.perf_counter()
    view.viewport().grab()
    return time.perf_counter() - started


def _settled() -> None:
    """Leave nothing of the previous measurement to this one: pending events, deferred deletes, garbage."""
    QApplication.processEvents()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


def _new_view(view_class: type[QTableView], scroll_bars: str | None = None) -> QTableView:
    """A shown view of one size, rows of one height and no row numbers for both sides (as in PaxDesk's
    window), with the given style sheet on its scroll bars; before the clock starts."""
    _settled()
    view = view_class()
    if scroll_bars is not None:
        for bar in (view.verticalScrollBar(), view.horizontalScrollBar()):
            bar.setStyleSheet(scroll_bars)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
    view.resize(1280, 800)
    _PaintCounter(view)
    view.show()
    return view


class Ours:
    """PaxDesk's table: RecordTableModel in the main window's RecordTableView."""

    def __init__(self) -> None:
        from gui.record_table import RecordTableView
        from gui.table_model import RecordTableModel

        self._model_class = RecordTableModel
        self._view_class = RecordTableView
        self.repaints: list[float] = []
        self.held: list[float] = []

    def first_rows(self) -> float:
        view = _new_view(self._view_class)
        started = time.perf_counter()
        model = self._model_class("contributions")
        view.setModel(model)
        _painted(view)
        elapsed = time.perf_counter() - started
        self.repaints.append(_repaint(view))
        model.wait_until_loaded()  # let the background read finish before the next measurement
        view.close()
        return elapsed

    def last_row(self) -> float:
        view = _new_view(self._view_class)
        started = time.perf_counter()
        model = self._model_class("contributions")
        view.setModel(model)
        model.wait_until_loaded()
        view.scrollToBottom()
        _painted(view)
        assert model.data(model.index(model.rowCount() - 1, 0)) is not None
        elapsed = time.perf_counter() - started
        view.close()
        return elapsed

    def filter(self) -> float:
        view, model = self._opened()
        elapsed, _held = self._changed(view, model, lambda: model.set_filters({"contributor": "kaz"}))
        assert "Kazakhstan" in model.data(model.index(0, model.column_index("contributor")))
        model.wait_until_loaded()
        self.filtered_rows = model.rowCount()
        view.close()
        return elapsed

    def sort(self) -> float:
        """Sort by total (no index: every row is read): until the largest totals are painted; the time the GUI
        thread was held goes to `held`."""
        view, model = self._opened()
        column = model.column_index("total_count")
        elapsed, held = self._changed(view, model, lambda: model.sort(column, Qt.SortOrder.DescendingOrder))
        self.held.append(held)
        assert model.record(0)["total_count"] == TOP_TOTAL
        model.wait_until_loaded()
        view.close()
        return elapsed

    def _opened(self):
        view = _new_view(self._view_class)
        model = self._model_class("contributions")
        view.setModel(model)
        _painted(view)
        model.wait_until_loaded()
        return view, model

    @staticmethod
    def _changed(view: QTableView, model, change) -> tuple[float, float]:
        """The time from `change` until its first rows are painted, and the time the GUI thread was held."""
        started = time.perf_counter()
        change()
        held = time.perf_counter() - started
        while not model.is_current:  # a slow first page is read in the background: the window answers meanwhile
            QApplication.processEvents()
        _painted(view)
        return time.perf_counter() - started, held


class Baseline:
    """QSqlQueryModel in a QTableView: what a generic SQLite browser built on Qt shows."""

    def __init__(self, path: Path, scroll_bars: str | None = None) -> None:
        self.repaints: list[float] = []
        self.held: list[float] = []
        self.scroll_bars = scroll_bars
        self.database = QSqlDatabase.addDatabase("QSQLITE", "bench" if scroll_bars is None else "bench-like")
        self.database.setDatabaseName(str(path))
        if not self.database.open():
            raise SystemExit(f"QSQLITE cannot open {path}: {self.database.lastError().text()}")

    def first_rows(self) -> float:
        view = _new_view(QTableView, self.scroll_bars)
        started = time.perf_counter()
        model = QSqlQueryModel()
        model.setQuery(f"{BASELINE_SELECT} ORDER BY c.id", self.database)
        view.setModel(model)
        _painted(view)
        elapsed = time.perf_counter() - started
        self.repaints.append(_repaint(view))
        view.close()
        return elapsed

    def last_row(self) -> float:
        view = _new_view(QTableView, self.scroll_bars)
        started = time.perf_counter()
        model = QSqlQueryModel()
        model.setQuery(f"{BASELINE_SELECT} ORDER BY c.id", self.database)
        while model.canFetchMore():  # QSqlQueryModel learns the size of an SQLite result only by reading it
            model.fetchMore()
        view.setModel(model)
        view.scrollToBottom()
        _painted(view)
        assert model.data(model.index(model.rowCount() - 1, 0)) is not None
        elapsed = time.perf_counter() - started
        self.rows = model.rowCount()
        view.close()
        return elapsed

    def filter(self) -> float:
        view, model = self._opened()
        elapsed, _held = self._changed(view, model, f"{BASELINE_SELECT} WHERE a.name LIKE '%kaz%' ORDER BY c.id")
        assert "Kazakhstan" in model.data(model.index(0, 2))
        view.close()
        return elapsed

    def sort(self) -> float:
        view, model = self._opened()
        elapsed, held = self._changed(view, model, f"{BASELINE_SELECT} ORDER BY c.total_count DESC")
        self.held.append(held)
        assert model.data(model.index(0, 8)) == TOP_TOTAL
        view.close()
        return elapsed

    def _opened(self) -> tuple[QTableView, QSqlQueryModel]:
        view = _new_view(QTableView, self.scroll_bars)
        model = QSqlQueryModel()
        model.setQuery(f"{BASELINE_SELECT} ORDER BY c.id", self.database)
        view.setModel(model)
        _painted(view)
        return view, model

    def _changed(self, view: QTableView, model: QSqlQueryModel, sql: str) -> tuple[float, float]:
        started = time.perf_counter()
        model.setQuery(sql, self.database)
        held = time.perf_counter() - started
        _painted(view)
        return time.perf_counter() - started, held


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--order", choices=("alternate", "blocks"), default="alternate",
                        help="alternate the two sides run by run (default), or run each side's runs together")
    args = parser.parse_args(argv)

    path = database_for(args.rows)
    app = QApplication.instance() or QApplication([])
    open_database(path)
    print(f"{args.rows:,} contributions, medians of {args.runs} runs ({args.order}); baseline: QSqlQueryModel "
          "(QSQLITE, the same SELECT with joins for names)\n")

    ours, baseline, like = Ours(), Baseline(path), Baseline(path, scroll_bar_style())
    # One untimed round of the cheap measurements warms fonts, style and SQLite's page cache for every side.
    for side in (ours, baseline, like):
        side.first_rows()
        side.filter()
    ours.sort()
    # First rows and filter read a screenful on both sides. By default runs alternate, so that both meet the same
    # load from the rest of the machine; each side then starts with the processor caches the other one left,
    # which costs PaxDesk's Python more than Qt's C++ (--order blocks runs each side's runs together instead).
    # The sorts and jumps to the last row, which read every row, are ours first, so that the peak memory read
    # after them is ours alone (QSqlQueryModel keeps every row it reads, and sorts in memory).
    samples: dict[str, dict[str, list[float]]] = {"ours": {}, "base": {}, "like": {}}
    sides = (("ours", ours), ("base", baseline), ("like", like))
    for name in ("first_rows", "filter"):
        if args.order == "alternate":
            order = [side for _ in range(args.runs) for side in sides]
        else:
            order = [side for side in sides for _ in range(args.runs)]
        for label, side in order:
            samples[label].setdefault(name, []).append(getattr(side, name)())
    samples["ours"]["repaint"], samples["base"]["repaint"] = ours.repaints[-args.runs:], baseline.repaints[-args.runs:]
    samples["ours"]["sort"] = [ours.sort() for _ in range(args.runs)]
    samples["ours"]["last_row"] = [ours.last_row() for _ in range(args.runs)]
    our_peak = peak_memory_mb()
    samples["base"]["sort"] = [baseline.sort() for _ in range(args.runs)]
    samples["ours"]["sort_held"], samples["base"]["sort_held"] = ours.held[-args.runs:], baseline.held[-args.runs:]
    samples["base"]["last_row"] = [baseline.last_row() for _ in range(args.runs)]
    figures = {name: statistics.median(values) * 1000 for name, values in samples["ours"].items()}
    base = {name: statistics.median(values) * 1000 for name, values in samples["base"].items()}
    for name in ("first_rows", "filter"):  # the same figures of ours, against the like-for-like baseline
        figures[f"{name}_like"] = figures[name]
        base[f"{name}_like"] = statistics.median(samples["like"][name]) * 1000

    titles = {"first_rows": "first rows painted",
              "first_rows_like": "  like for like (both with PaxDesk's scroll bars)",
              "repaint": "the same rows painted again",
              "last_row": "jump to last row, painted",
              "filter": "filter 'kaz' on contributing country, first rows painted",
              "filter_like": "  like for like (both with PaxDesk's scroll bars)",
              "sort": "sort by total (no index), first rows painted",
              "sort_held": "sort by total (no index), GUI thread held"}
    width = max(len(t) for t in titles.values())
    print(f"{'':{width}}  {'ours':>10}  {'baseline':>10}  {'ours/baseline':>13}")
    for name, title in titles.items():
        ratio = figures[name] / base[name]
        print(f"{title:{width}}  {figures[name]:8.1f} ms  {base[name]:8.1f} ms  {ratio:12.2f}x")
    print(f"\nrows matching the filter: {ours.filtered_rows:,}; rows read by QSqlQueryModel to reach the end: "
          f"{baseline.rows:,}")
    print(f"peak memory (ru_maxrss) after RecordTableModel runs: {our_peak:.0f} MB (target < 300 MB)")
    print(f"peak memory after the QSqlQueryModel runs too: {peak_memory_mb():.0f} MB")
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
