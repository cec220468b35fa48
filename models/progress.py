"""Progress reporting and cancellation for long work (import, export), without any GUI dependency.

The GUI's task helper passes a Progress whose `report` emits a Qt signal and whose `cancel` is wired
to a Cancel button; the command line passes none (or one that prints).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Cancelled(Exception):
    """Raised inside long work when the user cancelled; transactions roll back on the way out."""


class Progress:
    def __init__(self, on_report: Callable[[int, int, str], None] | None = None):
        self._on_report = on_report
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def report(self, done: int, total: int, message: str = "") -> None:
        """Tell how far the work is, and stop it here if the user cancelled."""
        if self._cancelled.is_set():
            raise Cancelled()
        if self._on_report is not None:
            self._on_report(done, total, message)

    def check(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled()


NO_PROGRESS = Progress()
