"""Watching the change log for other people's saves, every few seconds, off the GUI thread."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from models import schema
from models.changes import ChangeFeed
from models.dialect import first_line


class ChangeWatcher(QObject):
    """Polls models.changes on a thread of its own (with its own database connection, so that a slow or
    unreachable server never freezes the window) and reports what changed. A lost connection is reported
    once and retried at every interval until it comes back."""

    changes_arrived = Signal(list)  # [models.changes.Change], oldest first
    connection_lost = Signal(str)  # a message for the status bar
    connection_restored = Signal()
    _polled = Signal(int, object)  # from the polling thread: its generation, a list of changes or the exception

    def __init__(self, interval_ms: int = 3000, parent: QObject | None = None):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.poll)
        self._polled.connect(self._deliver)
        self._executor: ThreadPoolExecutor | None = None
        self._feed: ChangeFeed | None = None
        self._in_flight: Future | None = None
        self._database = None
        self._lost = False
        # Bumped by every start and stop: a look still under way for an earlier start reports nothing.
        self._generation = 0

    def start(self, since: int | None = None) -> None:
        """Watch the database the models are bound to now, for change sets after `since` (by default the
        latest one when the polling thread first looks, which it does at once)."""
        self.stop()  # a new generation: looks still under way for an earlier start report nothing
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="paxdesk-changes")
        self._feed = ChangeFeed(since) if since is not None else None
        self._database = schema.database.obj
        self._lost = False
        self._timer.start()
        self.poll()

    def stop(self) -> None:
        """Stop watching (the window closes, another database is opened) and close the polling connection."""
        self._timer.stop()
        self._generation += 1
        if self._executor is not None:
            self._executor.submit(_close_connection, self._database)
            self._executor.shutdown(wait=False)
            self._executor = None
        self._in_flight = None

    @property
    def active(self) -> bool:
        return self._timer.isActive()

    @Slot()
    def poll(self) -> None:
        """Look now (the timer calls this; a window may too, e.g. when it regains focus)."""
        if self._executor is None or (self._in_flight is not None and not self._in_flight.done()):
            return  # the previous look is still waiting for the server: do not pile up
        # The feed travels with the look, so a look left over from an earlier start never reads the new one.
        self._in_flight = self._executor.submit(self._look, self._generation, self._feed)

    def _look(self, generation: int, feed: ChangeFeed | None) -> None:
        if schema.database.obj is not self._database:
            return  # another database was opened; the window starts watching it anew
        try:
            if feed is None:
                feed = ChangeFeed()
                if generation == self._generation:
                    self._feed = feed
            self._polled.emit(generation, feed.poll())
        except Exception as exc:  # a lost server, a locked file: reported and tried again next time
            _close_connection(self._database)
            self._polled.emit(generation, exc)

    @Slot(int, object)
    def _deliver(self, generation: int, result: object) -> None:
        if not self.active or generation != self._generation:
            return
        if isinstance(result, Exception):
            if not self._lost:
                self._lost = True
                self.connection_lost.emit(f"Cannot see other people's changes: {first_line(result)}")
            return
        if self._lost:
            self._lost = False
            self.connection_restored.emit()
        if result:
            self.changes_arrived.emit(result)


def _close_connection(database) -> None:
    try:
        if database is not None and not database.is_closed():
            database.close()
    except Exception:  # a connection the server already dropped; nothing more to release
        pass
