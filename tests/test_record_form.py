"""The record form as a curator uses it: typing, choosing, Enter, Esc, Tab, undo, and what the database holds."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QCompleter, QLineEdit, QMessageBox, QPlainTextEdit

from gui.record_form import RecordForm
from gui.undo import undo_actions, undo_notifier
from gui.widgets.field_editors import OptionalSpinBox
from models import schema, services
from models.reconcile import match_record
from models.records import RECORD_TYPES

ALMATY = "Armenia–Azerbaijan talks in Almaty"


@pytest.fixture
def stack():
    return QUndoStack()


@pytest.fixture
def form(seeded_db, qtbot, stack):
    widget = RecordForm(stack)
    qtbot.addWidget(widget)
    widget.resize(560, 900)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


@pytest.fixture
def almaty(form):
    event_id = match_record("mediation-events", ALMATY)
    form.load("mediation-events", event_id)
    return event_id


def editor(form, name):
    return form._page.editors[name]


def message(form, name) -> str:
    label = form._page.rows[name].message
    return label.text() if label.isVisible() else ""


def retype(qtbot, widget, text):
    """Select what is there and type over it, as a user does."""
    line = widget.lineEdit() if isinstance(widget, QComboBox | OptionalSpinBox) else widget
    line.selectAll()
    qtbot.keyClick(line, Qt.Key.Key_Delete)
    qtbot.keyClicks(line, text)


def wait_validated(qtbot, form):
    """Messages follow typing after a short pause; wait for it like a user would."""
    qtbot.waitUntil(lambda: not form._validation_timer.isActive(), timeout=2000)


def event_row(event_id):
    return schema.MediationEvent.get_by_id(event_id)


# --- every record type ---------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(RECORD_TYPES))
def test_every_record_type_builds_and_a_new_one_names_its_required_fields(form, key):
    spec = RECORD_TYPES[key]
    form.load(key, None)
    assert form.title.text() == f"New {spec.singular}"
    for field in spec.fields:
        control = editor(form, field.name).control
        expected = {"text": QLineEdit, "longtext": QPlainTextEdit, "int": OptionalSpinBox, "float": QLineEdit,
                    "bool": QCheckBox, "code": QComboBox, "ref": QComboBox, "edtf": QLineEdit, "date": QLineEdit}
        assert isinstance(control, expected[field.kind]), field.name
        if field.required:
            assert f"{field.label} is required" in message(form, field.name)
        elif field.kind not in ("int", "ref"):  # counts and references may carry a record rule's message
            assert message(form, field.name) == "", field.name
    assert set(form._page.links) == {link.name for link in spec.links}
    assert not form.save_button.isEnabled()
    assert "to fix before saving" in form.summary.text()
    assert not form.has_unsaved_changes()


def test_optional_count_can_be_empty_and_distinct_from_zero(form, qtbot):
    form.load("incidents", match_record("incidents", schema.Incident.get().title))
    box = editor(form, "injured_count").control
    assert box.text() == "" and editor(form, "injured_count").raw() is None
    retype(qtbot, box, "0")
    assert editor(form, "injured_count").raw() == 0
    retype(qtbot, box, "")
    assert editor(form, "injured_count").raw() is None


def test_reference_box_finds_names_by_any_part(form, qtbot):
    form.load("contributions", None)
    box = editor(form, "contributor").control
    completer: QCompleter = box.completer()
    assert completer.filterMode() == Qt.MatchFlag.MatchContains
    completer.setCompletionPrefix("zakh")
    found = [completer.completionModel().index(row, 0).data() for row in range(completer.completionCount())]
    assert found == ["Kazakhstan"]
    retype(qtbot, box, "Kazakstan")
    wait_validated(qtbot, form)
    assert "No actor called 'Kazakstan'; closest: Kazakhstan" in message(form, "contributor")
    retype(qtbot, box, "Turkey")  # an alias is matched as import matches it
    assert editor(form, "contributor").raw() == match_record("actors", "Türkiye")


def test_edtf_field_says_what_it_understood(form, qtbot, almaty):
    end = editor(form, "end_date")
    retype(qtbot, end.control, "2013-02")
    assert end.hint.text() == "February 2013"
    retype(qtbot, end.control, "2017~")
    assert end.hint.text() == "around 2017"
    retype(qtbot, end.control, "2024-05-10")
    assert end.hint.text() == "10 May 2024"


# --- editing the Almaty talks --------------------------------------------------------------------

def test_bad_end_dates_are_explained_beside_the_field_and_block_saving(form, qtbot, almaty):
    end = editor(form, "end_date").control
    assert end.text() == "2024-05-11" and form.save_button.isEnabled() is False

    retype(qtbot, end, "2024-05-01")
    wait_validated(qtbot, form)
    assert "before start date 2024-05-10" in message(form, "end_date")
    assert not form.save_button.isEnabled()
    assert "End date" in form.summary.text()

    retype(qtbot, end, "2024-13")
    wait_validated(qtbot, form)
    assert "'2024-13' is not a real date" in message(form, "end_date")
    assert not form.save_button.isEnabled()
    qtbot.keyClick(end, Qt.Key.Key_Return)  # Enter does not save an invalid record
    assert event_row(almaty).end_date == "2024-05-11"

    retype(qtbot, end, "2024-05-12")
    wait_validated(qtbot, form)
    assert message(form, "end_date") == ""
    assert form.save_button.isEnabled()
    with qtbot.waitSignal(form.record_saved) as saved:
        qtbot.keyClick(end, Qt.Key.Key_Return)
    assert saved.args == ["mediation-events", almaty]
    row = event_row(almaty)
    assert (row.end_date, row.version) == ("2024-05-12", 2)
    assert not form.has_unsaved_changes()
    assert "version 2" in form.meta.text()


def test_adding_a_participant_with_a_role_is_saved_with_the_event(form, qtbot, almaty):
    participants = form._page.links["participants"]
    assert participants.row_count() == 3
    qtbot.mouseClick(participants.add_button, Qt.MouseButton.LeftButton)
    assert participants.row_count() == 4
    retype(qtbot, participants.editor(3, "actor").control, "Russia")
    wait_validated(qtbot, form)
    assert "Role is required" in participants.messages.text()
    assert not form.save_button.isEnabled()
    role = participants.editor(3, "role").control
    role.setCurrentIndex(role.findText("Mediator"))
    wait_validated(qtbot, form)
    assert not participants.messages.isVisible()
    with qtbot.waitSignal(form.record_saved):
        qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    rows = services.linked_rows("mediation-events", almaty, "participants")
    assert {"actor": match_record("actors", "Russian Federation"), "role": "mediator"} in rows
    assert len(rows) == 4


def test_removing_a_participant_row(form, qtbot, almaty):
    participants = form._page.links["participants"]
    host = participants.editor(2, "actor").control.currentText()
    assert host == "Kazakhstan"
    qtbot.mouseClick(participants._remove_buttons[2], Qt.MouseButton.LeftButton)
    form.save()
    assert [r["role"] for r in services.linked_rows("mediation-events", almaty, "participants")] == ["party", "party"]


def test_a_participant_given_twice_is_refused_beside_the_table(form, qtbot, almaty):
    participants = form._page.links["participants"]
    qtbot.mouseClick(participants.add_button, Qt.MouseButton.LeftButton)
    retype(qtbot, participants.editor(3, "actor").control, "Armenia")
    role = participants.editor(3, "role").control
    role.setCurrentIndex(role.findText("Party"))
    assert form.save() is False
    assert "row 4 repeats an earlier row" in participants.messages.text()
    assert form.banner.isVisible()
    assert len(services.linked_rows("mediation-events", almaty, "participants")) == 3


def test_enter_in_multi_line_text_is_a_new_line_not_a_save(form, qtbot, almaty):
    outcome = editor(form, "outcome").control
    outcome.moveCursor(outcome.textCursor().MoveOperation.End)
    qtbot.keyClick(outcome, Qt.Key.Key_Return)
    qtbot.keyClicks(outcome, "Next round in autumn.")
    assert outcome.toPlainText().endswith("differences.\nNext round in autumn.")
    assert event_row(almaty).version == 1
    assert form.has_unsaved_changes()


def test_escape_reverts_unsaved_changes(form, qtbot, almaty):
    city = editor(form, "venue_city").control
    retype(qtbot, city, "Astana")
    assert form.has_unsaved_changes()
    assert form.revert_button.isEnabled()
    qtbot.keyClick(city, Qt.Key.Key_Escape)
    assert city.text() == "Almaty"
    assert not form.has_unsaved_changes()
    assert event_row(almaty).venue_city == "Almaty"


def test_typing_back_the_stored_value_is_not_an_unsaved_change(form, qtbot, almaty):
    city = editor(form, "venue_city").control
    qtbot.keyClick(city, Qt.Key.Key_End)
    with qtbot.waitSignal(form.dirty_changed):
        qtbot.keyClick(city, Qt.Key.Key_Backspace)
    qtbot.keyClicks(city, "y")
    assert city.text() == "Almaty"
    assert not form.has_unsaved_changes()


def test_tab_walks_the_fields_in_catalogue_order(form, qtbot, almaty):
    form.activateWindow()
    qtbot.waitUntil(form.isActiveWindow)
    title = editor(form, "title").control
    title.setFocus()
    qtbot.waitUntil(title.hasFocus)
    visited = []
    for _ in range(5):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        focused = QApplication.focusWidget()
        visited.append(next(name for name, e in form._page.editors.items()
                            if focused is e.control or e.control.isAncestorOf(focused)))
    assert visited == ["process", "start_date", "end_date", "venue_city", "venue_country"]


# --- confirm_discard --------------------------------------------------------------------------------

def answer_with(monkeypatch, button):
    asked = []

    def question(*args, **kwargs):
        asked.append(args[2])
        return button

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return asked


def test_confirm_discard_does_not_ask_without_changes(form, monkeypatch, almaty):
    asked = answer_with(monkeypatch, QMessageBox.StandardButton.Cancel)
    assert form.confirm_discard() is True
    assert asked == []


def test_confirm_discard_cancel_keeps_the_changes(form, qtbot, monkeypatch, almaty):
    retype(qtbot, editor(form, "venue_city").control, "Astana")
    asked = answer_with(monkeypatch, QMessageBox.StandardButton.Cancel)
    assert form.confirm_discard() is False
    assert ALMATY in asked[0]
    assert editor(form, "venue_city").control.text() == "Astana"
    assert form.has_unsaved_changes()


def test_confirm_discard_discard_drops_the_changes(form, qtbot, monkeypatch, almaty):
    retype(qtbot, editor(form, "venue_city").control, "Astana")
    answer_with(monkeypatch, QMessageBox.StandardButton.Discard)
    assert form.confirm_discard() is True
    assert editor(form, "venue_city").control.text() == "Almaty"
    assert event_row(almaty).venue_city == "Almaty"


def test_confirm_discard_save_writes_them(form, qtbot, monkeypatch, almaty):
    retype(qtbot, editor(form, "venue_city").control, "Astana")
    answer_with(monkeypatch, QMessageBox.StandardButton.Save)
    with qtbot.waitSignal(form.record_saved):
        assert form.confirm_discard() is True
    assert event_row(almaty).venue_city == "Astana"


def test_confirm_discard_save_of_an_invalid_record_stays(form, qtbot, monkeypatch, almaty):
    retype(qtbot, editor(form, "end_date").control, "2024-13")
    answer_with(monkeypatch, QMessageBox.StandardButton.Save)
    assert form.confirm_discard() is False
    assert event_row(almaty).end_date == "2024-05-11"


# --- new records ------------------------------------------------------------------------------------

def test_new_contribution_through_the_form(form, qtbot):
    form.load("contributions", None)
    qtbot.keyClicks(editor(form, "reporting_date").control, "30/06/2024")
    assert editor(form, "reporting_date").hint.text() == "30 June 2024"
    qtbot.keyClicks(editor(form, "contributor").control.lineEdit(), "Kazakhstan")
    qtbot.keyClicks(editor(form, "mission").control.lineEdit(), "UNISFA")
    personnel = editor(form, "personnel_type").control
    personnel.setCurrentIndex(personnel.findText("Staff Officer"))
    qtbot.keyClicks(editor(form, "female_count").control.lineEdit(), "1")
    qtbot.keyClicks(editor(form, "male_count").control.lineEdit(), "2")
    wait_validated(qtbot, form)
    assert editor(form, "total_count").hint.text() == "= 3 (calculated)"
    assert form.save_button.isEnabled(), form.summary.text()
    with qtbot.waitSignal(form.record_saved) as saved:
        qtbot.keyClick(editor(form, "male_count").control, Qt.Key.Key_Enter)
    key, record_id = saved.args
    row = schema.Contribution.get_by_id(record_id)
    assert key == "contributions"
    assert (row.reporting_date, row.contributor_id, row.mission_id, row.personnel_type) == (
        dt.date(2024, 6, 30), match_record("actors", "Kazakhstan"), match_record("missions", "UNISFA"),
        "Staff Officer")
    assert (row.female_count, row.male_count, row.total_count) == (1, 2, 3)
    assert form.record_id == record_id
    assert editor(form, "total_count").control.text() == "3"


def test_escape_on_a_new_record_clears_it(form, qtbot):
    form.load("actors", None)
    qtbot.keyClicks(editor(form, "name").control, "Republic of Somewhere")
    qtbot.keyClick(editor(form, "name").control, Qt.Key.Key_Escape)
    assert editor(form, "name").control.text() == ""
    assert not form.has_unsaved_changes()


def test_a_new_mission_starts_active(form):
    form.load("missions", None)
    assert editor(form, "active").control.isChecked()


def test_duplicate_starts_an_unsaved_copy_with_links(form, qtbot, almaty):
    form.duplicate()
    assert form.record_id is None
    assert form.has_unsaved_changes()
    assert "Copy of" in form.meta.text()
    assert "already exists" in message(form, "title")  # same title and start date: caught while typing
    assert not form.save_button.isEnabled()
    retype(qtbot, editor(form, "start_date").control, "2024-09-02")
    retype(qtbot, editor(form, "end_date").control, "")
    wait_validated(qtbot, form)
    with qtbot.waitSignal(form.record_saved) as saved:
        form.save()
    copy_id = saved.args[1]
    assert copy_id != almaty
    assert event_row(copy_id).start_date == "2024-09-02"
    assert services.linked_rows("mediation-events", copy_id, "participants") == \
        services.linked_rows("mediation-events", almaty, "participants")
    assert len(services.linked_rows("mediation-events", copy_id, "citations")) == 3


# --- concurrency ------------------------------------------------------------------------------------

def test_a_stale_save_is_refused_and_offers_to_reload(form, qtbot, almaty):
    services.update_record("mediation-events", almaty, {"venue_city": "Astana"}, expected_version=1)
    retype(qtbot, editor(form, "notes").control, "Seen in the press.")
    wait_validated(qtbot, form)
    assert form.save() is False
    assert form.banner.isVisible()
    assert "was changed by tester" in form.banner_text.text()
    assert form.reload_button.isVisible()
    row = event_row(almaty)
    assert (row.venue_city, row.notes, row.version) == ("Astana", "", 2)
    assert form.has_unsaved_changes()  # the user's typing is not thrown away unasked
    qtbot.mouseClick(form.reload_button, Qt.MouseButton.LeftButton)
    assert editor(form, "venue_city").control.text() == "Astana"
    assert editor(form, "notes").control.toPlainText() == ""
    assert not form.banner.isVisible()


# --- undo and redo ----------------------------------------------------------------------------------

def test_undo_and_redo_of_an_edit_follow_in_the_database_and_the_form(form, qtbot, stack, almaty):
    undo, redo = undo_actions(stack, form)
    retype(qtbot, editor(form, "title").control, "Almaty talks")
    form.save()
    assert undo.text() == "Undo Edit mediation event ‘Almaty talks’"
    assert event_row(almaty).title == "Almaty talks"
    undo.trigger()
    assert event_row(almaty).title == ALMATY
    assert editor(form, "title").control.text() == ALMATY  # the form follows the database
    assert redo.text() == "Redo Edit mediation event ‘Almaty talks’"
    redo.trigger()
    assert event_row(almaty).title == "Almaty talks"
    assert editor(form, "title").control.text() == "Almaty talks"


def test_undo_of_a_new_record_removes_it_and_redo_brings_it_back(form, qtbot, stack):
    form.load("peace-processes", None)
    qtbot.keyClicks(editor(form, "name").control, "Caspian talks")
    with qtbot.waitSignal(form.record_saved) as saved:
        form.save()
    process_id = saved.args[1]
    assert stack.undoText() == "New peace process ‘Caspian talks’"
    stack.undo()
    assert schema.PeaceProcess.get_or_none(schema.PeaceProcess.id == process_id) is None
    assert form.idle_label.isVisible()
    stack.redo()
    assert schema.PeaceProcess.get_by_id(process_id).name == "Caspian talks"


def test_delete_and_undo_bring_back_the_record_with_its_rows(form, qtbot, stack, monkeypatch, almaty):
    answer_with(monkeypatch, QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(form.record_deleted):
        assert form.delete_record() is True
    assert schema.MediationEvent.get_or_none(schema.MediationEvent.id == almaty) is None
    assert not schema.Participation.select().where(schema.Participation.event == almaty).exists()
    assert form.idle_label.isVisible()
    assert stack.undoText() == f"Delete mediation event ‘{ALMATY}’"
    stack.undo()
    assert event_row(almaty).title == ALMATY
    assert len(services.linked_rows("mediation-events", almaty, "participants")) == 3
    assert form.record_id == almaty and editor(form, "title").control.text() == ALMATY


def test_deleting_a_record_still_referred_to_is_refused_in_the_form(form, monkeypatch):
    answer_with(monkeypatch, QMessageBox.StandardButton.Yes)
    form.load("actors", match_record("actors", "Kazakhstan"))
    assert form.delete_record() is False
    assert "still used by" in form.banner_text.text()
    assert match_record("actors", "Kazakhstan") is not None


def test_an_undo_refused_after_a_later_change_keeps_the_form_usable(form, qtbot, stack, almaty):
    retype(qtbot, editor(form, "venue_city").control, "Astana")
    form.save()
    services.update_record("mediation-events", almaty, {"notes": "edited elsewhere"})
    refusals = []
    undo_notifier.refused.connect(refusals.append)
    stack.undo()
    undo_notifier.refused.disconnect(refusals.append)
    assert "has been changed since" in refusals[0]
    assert form.banner.isVisible() and "Cannot undo" in form.banner_text.text()
    assert stack.count() == 0
    row = event_row(almaty)
    assert (row.venue_city, row.notes) == ("Astana", "edited elsewhere")


@pytest.mark.parametrize("where", ["venue_country", "format", "start_date", "title"])
def test_enter_saves_from_combo_boxes_and_line_edits(form, qtbot, almaty, where):
    retype(qtbot, editor(form, "venue_city").control, "Astana")
    control = editor(form, where).control
    target = control.lineEdit() if isinstance(control, QComboBox) and control.isEditable() else control
    with qtbot.waitSignal(form.record_saved):
        qtbot.keyClick(target, Qt.Key.Key_Return)
    assert event_row(almaty).venue_city == "Astana"


def test_undo_of_an_added_participant_removes_it(form, qtbot, stack, almaty):
    participants = form._page.links["participants"]
    qtbot.mouseClick(participants.add_button, Qt.MouseButton.LeftButton)
    retype(qtbot, participants.editor(3, "actor").control, "Turkey")  # QTest types only ASCII
    role = participants.editor(3, "role").control
    role.setCurrentIndex(role.findText("Observer"))
    assert form.save()
    assert participants.editor(3, "actor").control.currentText() == "Türkiye"  # the alias found the state
    assert len(services.linked_rows("mediation-events", almaty, "participants")) == 4
    stack.undo()
    assert len(services.linked_rows("mediation-events", almaty, "participants")) == 3
    assert participants.row_count() == 3
    stack.redo()
    assert participants.row_count() == 4
    assert participants.editor(3, "actor").control.currentText() == "Türkiye"
