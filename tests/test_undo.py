"""Undo commands over change sets: pushed after the write, reverted through services, refusals survived."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QUndoStack
from PySide6.QtWidgets import QWidget

from gui.undo import ChangeSetCommand, UndoNotifier, record_change, undo_actions, undo_notifier
from models import schema, services
from models.reconcile import match_record


@pytest.fixture
def undof(seeded_db):
    return match_record("missions", "UNDOF")


def edit_headquarters(mission_id: int, value: str) -> services.ChangeRecorder:
    with services.recording("edit", f"Edit mission ‘UNDOF’ to {value}") as recorder:
        services.update_record("missions", mission_id, {"headquarters": value}, recorder=recorder)
    return recorder


def headquarters(mission_id: int) -> str:
    return schema.Mission.get_by_id(mission_id).headquarters


def test_pushing_does_not_write_again_and_undo_redo_follow(undof, qtbot):
    stack = QUndoStack()
    recorder = edit_headquarters(undof, "Damascus")
    change_sets = schema.ChangeSet.select().count()
    with qtbot.assertNotEmitted(undo_notifier.data_changed):
        assert record_change(stack, "Edit mission ‘UNDOF’", recorder) is True
    assert schema.ChangeSet.select().count() == change_sets  # the first redo wrote nothing
    assert schema.Mission.get_by_id(undof).version == 2

    with qtbot.waitSignal(undo_notifier.data_changed):
        stack.undo()
    assert headquarters(undof) == "Camp Faouar"
    with qtbot.waitSignal(undo_notifier.data_changed):
        stack.redo()
    assert headquarters(undof) == "Damascus"
    stack.undo()
    assert headquarters(undof) == "Camp Faouar"
    # Each undo and redo is itself in the change log, written by the same services.
    assert schema.ChangeSet.select().count() == change_sets + 3
    latest = schema.ChangeSet.select().order_by(schema.ChangeSet.id.desc()).first()
    assert latest.kind == "undo" and latest.summary == "Undo: Edit mission ‘UNDOF’ to Damascus"


def test_a_refused_undo_is_reported_and_dropped_from_the_stack(undof, qtbot):
    stack = QUndoStack()
    record_change(stack, "Edit mission ‘UNDOF’", edit_headquarters(undof, "Damascus"))
    record_change(stack, "Edit mission ‘UNISFA’", _edit_unisfa())
    services.update_record("missions", undof, {"host_location": "Golan"})  # someone else, not undoable here
    stack.undo()  # UNISFA's edit can still be undone
    assert stack.index() == 1
    with qtbot.waitSignal(undo_notifier.refused) as refused:
        stack.undo()
    assert "Cannot undo ‘Edit mission ‘UNDOF’’" in refused.args[0]
    assert "has been changed since" in refused.args[0]
    assert headquarters(undof) == "Damascus"  # nothing was written
    assert (stack.count(), stack.index()) == (1, 0)  # the stack no longer offers what cannot be done
    assert stack.redoText() == "Edit mission ‘UNISFA’"
    stack.redo()
    assert schema.Mission.get_by_id(match_record("missions", "UNISFA")).headquarters == "Abyei town"


def _edit_unisfa() -> services.ChangeRecorder:
    unisfa = match_record("missions", "UNISFA")
    with services.recording("edit", "Edit mission ‘UNISFA’") as recorder:
        services.update_record("missions", unisfa, {"headquarters": "Abyei town"}, recorder=recorder)
    return recorder


def test_a_refused_redo_is_dropped_too(undof, qtbot):
    stack = QUndoStack()
    record_change(stack, "Edit mission ‘UNDOF’", edit_headquarters(undof, "Damascus"))
    stack.undo()
    services.update_record("missions", undof, {"headquarters": "Quneitra"})
    with qtbot.waitSignal(undo_notifier.refused):
        stack.redo()
    assert headquarters(undof) == "Quneitra"
    assert stack.count() == 0


def test_nothing_written_pushes_nothing(undof):
    stack = QUndoStack()
    recorder = edit_headquarters(undof, headquarters(undof))
    assert record_change(stack, "Edit mission ‘UNDOF’", recorder) is False
    assert stack.count() == 0


def test_a_whole_import_like_change_set_is_one_step(seeded_db):
    stack = QUndoStack()
    with services.recording("import", "Import two actors") as recorder:
        services.save_record("actors", {"name": "Atlantis", "kind": "state"}, recorder=recorder)
        services.save_record("actors", {"name": "Lemuria", "kind": "state"}, recorder=recorder)
    stack.push(ChangeSetCommand("Import two actors", recorder.change_set.id))
    stack.undo()
    assert match_record("actors", "Atlantis") is None and match_record("actors", "Lemuria") is None
    stack.redo()
    assert match_record("actors", "Atlantis") is not None and match_record("actors", "Lemuria") is not None


def test_a_command_can_report_to_its_own_notifier(undof, qtbot):
    notifier = UndoNotifier()
    stack = QUndoStack()
    stack.push(ChangeSetCommand("Edit mission ‘UNDOF’", edit_headquarters(undof, "Damascus").change_set.id,
                                notifier))
    with qtbot.waitSignal(notifier.data_changed), qtbot.assertNotEmitted(undo_notifier.data_changed):
        stack.undo()


def test_edit_menu_actions_name_the_change_and_use_the_usual_keys(undof, qtbot):
    window = QWidget()
    qtbot.addWidget(window)
    stack = QUndoStack()
    undo, redo = undo_actions(stack, window)
    assert not undo.isEnabled()
    record_change(stack, "Edit mission ‘UNDOF’", edit_headquarters(undof, "Damascus"))
    assert undo.isEnabled() and undo.text() == "Undo Edit mission ‘UNDOF’"
    assert undo.shortcut() == QKeySequence("Ctrl+Z")
    assert QKeySequence("Ctrl+Shift+Z") in redo.shortcuts()
    undo.trigger()
    assert redo.text() == "Redo Edit mission ‘UNDOF’"
    assert headquarters(undof) == "Camp Faouar"


def test_a_large_change_set_is_undone_with_a_progress_dialog(undof, qtbot, monkeypatch):
    import gui.undo

    shown: list[tuple[int, int]] = []
    show = gui.undo.ChangeSetCommand._show_progress

    def watched(dialog, done: int, total: int, message: str) -> None:
        assert dialog.windowModality() == Qt.WindowModality.ApplicationModal  # the window stays inert
        shown.append((done, total))
        show(dialog, done, total, message)

    monkeypatch.setattr(gui.undo, "LARGE_CHANGE_SET", 0)  # every change set counts as large here
    monkeypatch.setattr(gui.undo.ChangeSetCommand, "_show_progress", staticmethod(watched))
    stack = QUndoStack()
    record_change(stack, "Edit mission ‘UNDOF’", edit_headquarters(undof, "Damascus"))
    with qtbot.waitSignal(undo_notifier.data_changed):
        stack.undo()
    assert headquarters(undof) == "Camp Faouar"
    assert shown and shown[-1] == (1, 1)
    stack.redo()
    assert headquarters(undof) == "Damascus"
