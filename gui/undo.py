"""Undo and redo of saved changes: one QUndoCommand per change set, reverted through models.services.

How the pieces fit:

- A write runs inside `services.recording(...)`; the change set it wrote is `recorder.change_set.id`.
  `record_change(stack, text, recorder)` (or `stack.push(ChangeSetCommand(text, change_set_id))`) is called
  AFTER the write, so the command's first `redo()` does nothing: the change is already in the database.
- `undo()` calls `services.revert_change_set(id)`, which writes the reverse as a new change set, and
  remembers that one; `redo()` reverts the revert. The database and its change log always agree with
  what the Edit menu says.
- When a revert is refused (`StaleRecord`: someone changed those rows since), nothing is written, the
  command is marked obsolete (Qt then drops it from the stack, so the stack never claims a state the
  database is not in) and `undo_notifier.refused` carries the curator's message.
- A large change set (an import: more than LARGE_CHANGE_SET entries) is reverted with a modal progress dialog,
  kept synchronous on purpose: QUndoStack takes undo()/redo() as done when they return, so a refusal must be
  known by then (a background revert would leave the stack claiming a state the database is not yet in).
  The dialog has no Cancel: a half-finished undo is rolled back anyway, and the command would be left in limbo.
- After every undo or redo that wrote something, `undo_notifier.data_changed` is emitted: the main window
  refreshes its table, the record form reloads the record it shows.

`undo_notifier` is a module-level QObject; connect to it once:
    undo_notifier.data_changed.connect(table_model.refresh)
    undo_notifier.refused.connect(lambda message: statusBar().showMessage(message, 10000))
`undo_actions(stack, parent)` gives Edit-menu actions ("Undo Edit mediation event ‘…’") with Ctrl+Z and
Ctrl+Shift+Z (and Ctrl+Y) as shortcuts. Clear the stack when another database is opened: its change sets
belong to the database they were written in.
"""

from __future__ import annotations

import traceback

from peewee import DoesNotExist, IntegrityError, PeeweeException
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QUndoCommand, QUndoStack
from PySide6.QtWidgets import QApplication, QProgressDialog

from models import services
from models.progress import Progress

LARGE_CHANGE_SET = 2_000  # entries; above this an undo or redo shows its progress


class UndoNotifier(QObject):
    data_changed = Signal()  # an undo or redo changed the database
    refused = Signal(str)  # an undo or redo could not be done; the message says why


undo_notifier = UndoNotifier()


class ChangeSetCommand(QUndoCommand):
    """Undoes and redoes one change set (a form save, a delete, a whole import)."""

    def __init__(self, text: str, change_set_id: int, notifier: UndoNotifier | None = None):
        super().__init__(text)
        self._applied = change_set_id  # the change set whose effect is currently in the database
        self._pushed = False
        self._notifier = notifier or undo_notifier

    @property
    def applied_change_set(self) -> int:
        return self._applied

    def redo(self) -> None:
        if not self._pushed:  # pushed after the write: the change is already there
            self._pushed = True
            return
        self._revert("redo")

    def undo(self) -> None:
        self._revert("undo")

    def _revert(self, what: str) -> None:
        # The revert reports from its first chunk on, with the number of rows: a large change set gets its
        # progress dialog then, without a count of its rows beforehand.
        dialogs: list[QProgressDialog] = []

        def report(done: int, total: int, message: str) -> None:
            if total > LARGE_CHANGE_SET:
                if not dialogs:
                    dialogs.append(self._progress_dialog(what, total))
                self._show_progress(dialogs[0], done, total, message)

        try:
            self._applied = services.revert_change_set(self._applied, progress=Progress(report))
        except services.RecordRefused as exc:
            self._refuse(f"Cannot {what} ‘{self.text()}’: {exc}")
        except IntegrityError as exc:  # e.g. a deleted record's name has been given to a new record since
            self._refuse(f"Cannot {what} ‘{self.text()}’: it would clash with data entered since ({exc})")
        except (PeeweeException, DoesNotExist) as exc:  # database gone or locked, change set missing
            traceback.print_exc()
            self._refuse(f"Cannot {what} ‘{self.text()}’: the database did not answer ({exc})")
        else:
            self._notifier.data_changed.emit()
        finally:
            for dialog in dialogs:
                dialog.close()
                dialog.deleteLater()

    def _progress_dialog(self, what: str, entries: int) -> QProgressDialog:
        dialog = QProgressDialog(f"{what.capitalize()} ‘{self.text()}’ ({entries:,} rows)…", "", 0, entries,
                                 QApplication.activeWindow())
        dialog.setWindowTitle(what.capitalize())
        dialog.setCancelButton(None)
        dialog.setWindowModality(Qt.WindowModality.ApplicationModal)  # no second undo while this one runs
        dialog.setMinimumDuration(400)
        dialog.setValue(0)
        return dialog

    @staticmethod
    def _show_progress(dialog: QProgressDialog, done: int, total: int, message: str) -> None:
        dialog.setMaximum(max(total, 1))
        dialog.setValue(done)
        QApplication.processEvents()  # repaint the dialog; the modality keeps the rest of the window inert

    def _refuse(self, message: str) -> None:
        # Obsolete commands are removed by QUndoStack right after this call returns, so the stack
        # stays consistent with the database (nothing was written).
        self.setObsolete(True)
        self._notifier.refused.emit(message)


def record_change(stack: QUndoStack, text: str, recorder: services.ChangeRecorder) -> bool:
    """Push the change set a `services.recording` block wrote; False (nothing pushed) when it wrote nothing."""
    if recorder.count == 0:
        return False
    stack.push(ChangeSetCommand(text, recorder.change_set.id))
    return True


def undo_actions(stack: QUndoStack, parent: QObject) -> tuple[QAction, QAction]:
    """Edit-menu actions whose text names the change ("Undo Edit mediation event ‘Almaty talks’")."""
    undo = stack.createUndoAction(parent, "Undo")
    undo.setShortcut(QKeySequence(QKeySequence.StandardKey.Undo))
    redo = stack.createRedoAction(parent, "Redo")
    redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
    return undo, redo
