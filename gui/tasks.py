"""Running long work (import, export, big queries) off the GUI thread, with progress and Cancel.

The work is a plain function taking a models.progress.Progress; it runs in a QThreadPool worker, whose
thread gets its own database connection (Peewee keeps one connection per thread).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from models.progress import Cancelled, Progress
from models.schema import database


class BackgroundTask(QObject):
    """Start with `start()`; exactly one of finished / failed / cancelled is emitted at the end."""

    progressed = Signal(int, int, str)  # done, total, message
    finished = Signal(object)  # the work's return value
    failed = Signal(str)  # a message for the user
    cancelled = Signal()

    def __init__(self, work: Callable[[Progress], Any], parent: QObject | None = None):
        super().__init__(parent)
        self._work = work
        self.progress = Progress(on_report=self.progressed.emit)
        self._runnable = _Runnable(self)

    def start(self) -> None:
        QThreadPool.globalInstance().start(self._runnable)

    @Slot()
    def cancel(self) -> None:
        self.progress.cancel()


class _Runnable(QRunnable):
    def __init__(self, task: BackgroundTask):
        super().__init__()
        self.setAutoDelete(False)
        self._task = task

    def run(self) -> None:
        task = self._task
        try:
            result = task._work(task.progress)
        except Cancelled:
            task.cancelled.emit()
        except Exception as exc:  # the user sees a message; the details go to the console for a bug report
            traceback.print_exc()
            task.failed.emit(str(exc) or exc.__class__.__name__)
        else:
            task.finished.emit(result)
        finally:
            if not database.is_closed():
                database.close()  # this worker thread's own connection
