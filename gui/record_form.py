"""The record form: one generic editor for every record type of the catalogue, its links and citations,
with live validation, optimistic-concurrency saves, undoable saves and deletes.

Contract for the main window:
- `RecordForm(undo_stack, parent=None)`; `load(key, record_id)` (None: a new empty record of that type);
  `duplicate()`; `has_unsaved_changes()`; `confirm_discard()` (asks Save / Discard / Cancel when there are
  unsaved changes, True when it is fine to move on; `load` itself never asks).
- Signals: `record_saved(key, id)`, `record_deleted(key, id)`, `dirty_changed(bool)`.
- Slots: `save()`, `revert()`, `delete_record()`, `refresh_from_database()` (reload the shown record unless
  it has unsaved changes; connected to `gui.undo.undo_notifier.data_changed`).
Keys: Enter saves (outside multi-line text), Esc reverts, Tab walks the fields in order.
"""

from __future__ import annotations

import re
from typing import Any

from peewee import PeeweeException
from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont, QKeyEvent, QUndoStack
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from gui.undo import ChangeSetCommand, undo_notifier
from gui.widgets.field_editors import FieldEditor, RefChoices, RefEditor, make_editor
from gui.widgets.link_editor import LinkEditor
from models import schema, services
from models.records import RecordType, record_type
from models.validation import ERROR, Issue, Report, validate_link_row, validate_record

VALIDATION_DELAY_MS = 150
ERROR_STYLE = "color: #b3261e;"
WARNING_STYLE = "color: #8a5300;"
MUTED_STYLE = "color: palette(placeholder-text);"
BANNER_STYLE = "QFrame#banner { background: #fdecea; border: 1px solid #e6b0aa; border-radius: 4px; }"
# Issue fields of link rows, as validation ("participants[2].actor") and the database checks
# ("participants.[2].actor", "participants.[2]", "participants") name them.
LINK_ISSUE = re.compile(r"^(?P<link>[\w-]+)\.?(?:\[(?P<row>\d+)\])?\.?(?P<field>\w*)$")


def _quoted(text: str) -> str:
    return f"‘{text}’"


class _FieldRow(QWidget):
    """An editor with its message line underneath."""

    def __init__(self, editor: FieldEditor, parent: QWidget | None = None):
        super().__init__(parent)
        self.editor = editor
        self.message = QLabel()
        self.message.setObjectName(f"message_{editor.spec.name}")
        self.message.setWordWrap(True)
        self.message.setVisible(False)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(editor)
        layout.addWidget(self.message)

    def show_messages(self, errors: list[str], warnings: list[str]) -> None:
        self.message.setText("\n".join(errors or warnings))
        self.message.setStyleSheet(ERROR_STYLE if errors else WARNING_STYLE)
        self.message.setVisible(bool(errors or warnings))


class _RecordPage(QWidget):
    """The fields and link tables of one record type, built once from the catalogue and reused."""

    def __init__(self, spec: RecordType, ref_choices: RefChoices, parent: QWidget | None = None):
        super().__init__(parent)
        self.spec = spec
        self.editors: dict[str, FieldEditor] = {}
        self.rows: dict[str, _FieldRow] = {}
        self.links: dict[str, LinkEditor] = {}
        fields = QFormLayout()
        fields.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        fields.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        fields.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        fields.setHorizontalSpacing(12)
        fields.setVerticalSpacing(8)
        line_height = QLineEdit().sizeHint().height()
        for field in spec.fields:
            editor = make_editor(field, ref_choices)
            row = _FieldRow(editor)
            label = QLabel(field.label + (" *" if field.required else ""))
            label.setBuddy(editor.control)
            label.setToolTip(("Required. " if field.required else "") + field.help)
            # The label's text sits level with the editor's first line, not with the message below it.
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            label.setFixedHeight(line_height if field.kind == "longtext" else editor.control.sizeHint().height())
            fields.addRow(label, row)
            self.editors[field.name] = editor
            self.rows[field.name] = row
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 12)
        layout.setSpacing(6)
        layout.addLayout(fields)
        for link in spec.links:
            heading = QLabel(link.label)
            font = heading.font()
            font.setBold(True)
            heading.setFont(font)
            heading.setContentsMargins(0, 12, 0, 0)
            editor = LinkEditor(link, ref_choices)
            layout.addWidget(heading)
            layout.addWidget(editor)
            self.links[link.name] = editor
        layout.addStretch(1)

    def ref_editors(self) -> list[RefEditor]:
        found = [e for e in self.editors.values() if isinstance(e, RefEditor)]
        for link in self.links.values():
            found.extend(e for row in link._rows for e in row if isinstance(e, RefEditor))
        return found


class RecordForm(QWidget):
    """Edits one record of any type; see the module docstring for the contract."""

    record_saved = Signal(str, int)
    record_deleted = Signal(str, int)
    dirty_changed = Signal(bool)

    def __init__(self, undo_stack: QUndoStack, parent: QWidget | None = None):
        super().__init__(parent)
        self._undo_stack = undo_stack
        self._choices = RefChoices(self)
        self._choices_as_of: int | None = None
        self._pages: dict[str, _RecordPage] = {}
        self._page: _RecordPage | None = None
        self._spec: RecordType | None = None
        self._record_id: int | None = None
        self._version: int | None = None
        self._baseline: tuple | None = None  # editor state as loaded; None: a new record not saved yet
        self._initial: tuple[dict, dict] | None = None  # what Esc restores on a new record
        self._loading = False
        self._dirty = False
        self._valid = False
        self._errors: list[str] = []
        self._last_deleted: tuple[str, int] | None = None
        self._validation_timer = QTimer(self)
        self._validation_timer.setSingleShot(True)
        self._validation_timer.setInterval(VALIDATION_DELAY_MS)
        self._validation_timer.timeout.connect(self.validate_now)
        # A member timer, not a one-shot lambda, so that it dies with the form.
        self._flash_timer = QTimer(self)
        self._flash_timer.setSingleShot(True)
        self._flash_timer.setInterval(600)
        self._flash_timer.timeout.connect(self._unflash)
        self._build()
        undo_notifier.data_changed.connect(self.refresh_from_database)
        undo_notifier.refused.connect(self._undo_refused)
        self._show_idle("Choose a record in the table, or create a new one.")

    # --- construction -----------------------------------------------------------------------------
    def _build(self) -> None:
        self.setMinimumWidth(380)
        self.title = QLabel()
        self.title.setObjectName("form_title")
        self.title.setWordWrap(True)
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        self.meta = QLabel()
        self.meta.setObjectName("form_meta")
        self.meta.setWordWrap(True)
        self.meta.setStyleSheet(MUTED_STYLE)

        self.banner = QFrame()
        self.banner.setObjectName("banner")
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner_text = QLabel()
        self.banner_text.setObjectName("banner_text")
        self.banner_text.setWordWrap(True)
        self.banner_text.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.reload_button = QPushButton("Reload")
        self.reload_button.setToolTip("Discard your changes and show the record as it is now stored")
        self.reload_button.clicked.connect(self._reload_clicked)
        banner_layout = QHBoxLayout(self.banner)
        banner_layout.setContentsMargins(10, 8, 10, 8)
        banner_layout.addWidget(self.banner_text, 1)
        banner_layout.addWidget(self.reload_button, 0, Qt.AlignmentFlag.AlignTop)
        self.banner.setVisible(False)

        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.idle_label = QLabel()
        self.idle_label.setObjectName("idle_label")
        self.idle_label.setWordWrap(True)
        self.idle_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.idle_label.setStyleSheet(MUTED_STYLE)

        self.summary = QLabel()
        self.summary.setObjectName("form_summary")
        self.summary.setWordWrap(True)
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("save_button")
        self.save_button.setToolTip("Save (Enter)")
        self.save_button.clicked.connect(self.save)
        self.revert_button = QPushButton("Revert")
        self.revert_button.setToolTip("Undo your unsaved changes (Esc)")
        self.revert_button.clicked.connect(self.revert)
        self.duplicate_button = QPushButton("Duplicate")
        self.duplicate_button.setToolTip("Start a new record with these values")
        self.duplicate_button.clicked.connect(self.duplicate)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.clicked.connect(self.delete_record)
        buttons = QHBoxLayout()
        buttons.setSpacing(6)
        buttons.addWidget(self.delete_button)
        buttons.addWidget(self.duplicate_button)
        buttons.addStretch(1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)

        header = QVBoxLayout()
        header.setContentsMargins(12, 10, 12, 0)
        header.setSpacing(2)
        header.addWidget(self.title)
        header.addWidget(self.meta)
        footer = QVBoxLayout()
        footer.setContentsMargins(12, 6, 12, 10)
        footer.setSpacing(6)
        footer.addWidget(self.summary)
        footer.addLayout(buttons)
        banner_box = QVBoxLayout()
        banner_box.setContentsMargins(12, 6, 12, 0)
        banner_box.addWidget(self.banner)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addLayout(banner_box)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.idle_label, 1)
        self.footer_line = QFrame()
        self.footer_line.setFrameShape(QFrame.Shape.HLine)
        self.footer_line.setFrameShadow(QFrame.Shadow.Sunken)
        layout.addWidget(self.footer_line)
        layout.addLayout(footer)

    def _page_for(self, spec: RecordType) -> _RecordPage:
        if spec.key not in self._pages:
            page = _RecordPage(spec, self._choices)
            for editor in page.editors.values():
                editor.changed.connect(self._edited)
            for link in page.links.values():
                link.changed.connect(self._edited)
                link.rows_changed.connect(self._update_tab_order)
            self._pages[spec.key] = page
        return self._pages[spec.key]

    def _show_page(self, spec: RecordType) -> None:
        page = self._page_for(spec)
        if self._page is not page:
            self.scroll.takeWidget()  # keep the previous page for later, do not delete it
            self.scroll.setWidget(page)
            self._page = page
            self._update_tab_order()
        self._spec = spec
        self.scroll.setVisible(True)
        self.idle_label.setVisible(False)
        self.scroll.verticalScrollBar().setValue(0)

    # --- the contract -----------------------------------------------------------------------------
    @property
    def record_key(self) -> str | None:
        return self._spec.key if self._spec else None

    @property
    def record_id(self) -> int | None:
        return self._record_id

    def load(self, key: str, record_id: int | None) -> None:
        """Show a stored record, or a new empty one (record_id None). Unsaved changes are dropped: the
        caller asks `confirm_discard()` first."""
        spec = record_type(key)
        self._last_deleted = None
        self._hide_banner()
        self._show_page(spec)
        self._refresh_choices()
        if record_id is None:
            self._record_id, self._version = None, None
            values = self._new_values(spec)
            links: dict[str, list[dict]] = {link.name: [] for link in spec.links}
        else:
            stored = services.snapshot(spec.model, record_id)
            if stored is None:
                self._show_idle(f"The {spec.singular} #{record_id} no longer exists.")
                return
            self._record_id, self._version = record_id, stored["version"]
            values = {field.name: stored.get(field.name) for field in spec.fields}
            links = {link.name: services.linked_rows(key, record_id, link.name) for link in spec.links}
        self._apply(values, links)
        self._baseline = self._state()
        self._initial = self._capture()
        self._set_dirty(False)
        self._update_header()
        self.validate_now()
        if record_id is None:
            first = next(iter(self._page.editors.values()))
            first.control.setFocus(Qt.FocusReason.OtherFocusReason)

    @Slot()
    def duplicate(self) -> None:
        """Keep the values on screen (unsaved edits included) as a new record that has not been saved."""
        if self._spec is None:
            return
        captured = self._capture()
        source = self._title_text()
        self._record_id, self._version = None, None
        self._restore(captured)
        self._initial = captured
        self._baseline = None
        self._hide_banner()
        self._set_dirty(True)
        self._update_header(note=f"Copy of {source}, not saved yet")
        self.validate_now()

    def has_unsaved_changes(self) -> bool:
        return self._dirty

    def confirm_discard(self) -> bool:
        """Ask Save / Discard / Cancel when there are unsaved changes; True when it is fine to move on."""
        if not self._dirty:
            return True
        self.validate_now()
        what = self._title_text()
        answer = QMessageBox.question(
            self, "Unsaved changes",
            f"{what} has unsaved changes.\n\nSave them before you go on?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        if answer == QMessageBox.StandardButton.Discard:
            self.revert()
            return True
        return False

    # --- saving, deleting, reverting --------------------------------------------------------------
    @Slot()
    def save(self) -> bool:
        """Validate, then write record and links in one change set and push it on the undo stack.
        True when saved (or nothing needed saving)."""
        if self._spec is None:
            return False
        self.validate_now()
        if not self._valid:
            self._flash_summary()
            return False
        spec = self._spec
        values = self._field_values()
        rows, _ = self._link_rows()
        links = {name: [row for _, row, _ in entries] for name, entries in rows.items()}
        clean, _ = validate_record(spec, values)
        action = "Edit" if self._record_id is not None else "New"
        text = f"{action} {spec.singular} {_quoted(services.record_label(spec, clean))}"
        try:
            with services.recording("edit", text) as recorder:
                record_id = services.save_record(
                    spec.key, values, record_id=self._record_id, expected_version=self._version, links=links,
                    recorder=recorder,
                )
        except services.StaleRecord as exc:
            self.show_banner(f"Not saved. {exc}", offer_reload=True)
            return False
        except services.RecordRefused as exc:
            self._show_refusal(exc.report, rows)
            return False
        except PeeweeException as exc:
            self.show_banner(f"Not saved: the database refused the change ({exc}).")
            return False
        if recorder.count:
            self._undo_stack.push(ChangeSetCommand(text, recorder.change_set.id))
        self.load(spec.key, record_id)
        self.summary.setStyleSheet(MUTED_STYLE)
        self.summary.setText("Saved." if recorder.count else "Nothing to save: the record was already so.")
        self.record_saved.emit(spec.key, record_id)
        return True

    @Slot()
    def revert(self) -> None:
        """Drop unsaved changes: reload a stored record, or restore a new one to how it started."""
        if self._spec is None:
            return
        if self._record_id is not None:
            self.load(self._spec.key, self._record_id)
        elif self._initial is not None:
            self._restore(self._initial)
            self._hide_banner()
            self._set_dirty(self._baseline is None or self._state() != self._baseline)
            self.validate_now()

    @Slot()
    def delete_record(self) -> bool:
        """Ask, then delete the shown record with its links and citations, undoably."""
        if self._spec is None or self._record_id is None:
            return False
        spec, record_id = self._spec, self._record_id
        label = self._title_text()
        answer = QMessageBox.question(
            self, f"Delete {spec.singular}",
            f"Delete the {spec.singular} {_quoted(label)} with its "
            + (", ".join(link.label.lower() for link in spec.links) or "data")
            + "?\n\nEdit › Undo brings it back.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return False
        text = f"Delete {spec.singular} {_quoted(label)}"
        try:
            with services.recording("delete", text) as recorder:
                services.delete_record(spec.key, record_id, expected_version=self._version, recorder=recorder)
        except services.StaleRecord as exc:
            self.show_banner(f"Not deleted. {exc}", offer_reload=True)
            return False
        except services.RecordRefused as exc:
            self.show_banner(f"Not deleted. {exc}")
            return False
        except PeeweeException as exc:
            self.show_banner(f"Not deleted: the database refused it ({exc}).")
            return False
        self._undo_stack.push(ChangeSetCommand(text, recorder.change_set.id))
        self._show_idle(f"The {spec.singular} {_quoted(label)} was deleted. Edit › Undo brings it back.")
        self._last_deleted = (spec.key, record_id)
        self.record_deleted.emit(spec.key, record_id)
        return True

    @Slot()
    def refresh_from_database(self) -> None:
        """After an undo, redo or import: show the record as now stored, unless the user is editing it."""
        if self._spec is None:
            if self._last_deleted is not None:  # an undo brought back the record deleted here
                key, record_id = self._last_deleted
                if services.snapshot(record_type(key).model, record_id) is not None:
                    self.load(key, record_id)
            return
        if self._dirty or self._record_id is None:
            return
        if services.snapshot(self._spec.model, self._record_id) is None:
            self._last_deleted = (self._spec.key, self._record_id)
            self._show_idle(f"The {self._spec.singular} {_quoted(self._title_text())} no longer exists.")
            return
        self.load(self._spec.key, self._record_id)

    # --- keys -------------------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        # Editors pass on the keys they do not use, so Enter here was not meant for a multi-line text.
        if self._spec is not None and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            self.save()
            return
        if self._spec is not None and event.key() == Qt.Key.Key_Escape and self._dirty:
            event.accept()
            self.revert()
            return
        super().keyPressEvent(event)

    # --- validation -------------------------------------------------------------------------------
    @Slot()
    def _edited(self) -> None:
        if self._loading or self._spec is None:
            return
        self._set_dirty(self._baseline is None or self._state() != self._baseline)
        self._validation_timer.start()

    @Slot()
    def validate_now(self) -> None:
        """Check the form as it stands (normally 150 ms after the last keystroke) and show the messages."""
        self._validation_timer.stop()
        if self._spec is None or self._page is None:
            return
        spec, page = self._spec, self._page
        values = self._field_values()
        clean, report = validate_record(spec, values)
        issues = self._with_editor_problems(report, page.editors)
        rows, link_issues = self._link_rows()
        for name, entries in rows.items():
            link = spec.link(name)
            for table_row, row, own in entries:
                _, row_report = validate_link_row(link, row)
                link_issues[name].extend((table_row, issue.field, issue.message, issue.severity)
                                         for issue in row_report.issues if issue.field not in own)
        errors = [i for i in issues if i.severity == ERROR] + [
            i for entries in link_issues.values() for i in entries if i[3] == ERROR
        ]
        if not errors:
            # Duplicates and vanished references, while typing rather than only when saving.
            issues.extend(services.check_against_database(spec, clean, self._record_id).issues)
        self._show_issues(issues, link_issues, clean, values)

    def _with_editor_problems(self, report: Report, editors: dict[str, FieldEditor]) -> list[Issue]:
        """Validation's issues, except where an editor knows better (a name that matches no record)."""
        own = {name: message for name, editor in editors.items() if (message := editor.problem())}
        issues = [issue for issue in report.issues if issue.field not in own]
        issues.extend(Issue(name, message) for name, message in own.items())
        return issues

    def _show_issues(self, issues: list[Issue], link_issues: dict[str, list[tuple]], clean: dict,
                     values: dict) -> None:
        page = self._page
        errors: list[str] = []
        for name, row in page.rows.items():
            mine = [i for i in issues if i.field == name]
            field_errors = [i.message for i in mine if i.severity == ERROR]
            row.show_messages(field_errors, [i.message for i in mine if i.severity != ERROR])
            if field_errors:
                errors.append(page.editors[name].spec.label)
            editor = page.editors[name]
            if editor.spec.kind in ("int", "float") and values.get(name) in (None, "") \
                    and clean.get(name) is not None:
                editor.set_hint(f"= {clean[name]:g} (calculated)")
            elif editor.spec.kind in ("int", "float"):
                editor.set_hint("")
        general = [i.message for i in issues if i.field not in page.rows and i.severity == ERROR]
        for name, link_editor in page.links.items():
            entries = link_issues.get(name, [])
            link_editor.show_issues([(row, field, message) for row, field, message, _ in entries])
            if any(entry[3] == ERROR for entry in entries):
                errors.append(link_editor.link.label)
        self._errors = errors + general
        self._valid = not self._errors
        self._update_summary()
        self._update_buttons()

    def _update_summary(self) -> None:
        if self._errors:
            count = len(self._errors)
            self.summary.setStyleSheet(ERROR_STYLE)
            self.summary.setText(f"{count} problem{'s' if count > 1 else ''} to fix before saving: "
                                 + "; ".join(self._errors))
        elif self._dirty:
            self.summary.setStyleSheet(MUTED_STYLE)
            self.summary.setText("Unsaved changes. Enter saves, Esc reverts.")
        else:
            self.summary.setText("")

    def _flash_summary(self) -> None:
        self.summary.setStyleSheet(ERROR_STYLE + " font-weight: bold;")
        self._flash_timer.start()

    @Slot()
    def _unflash(self) -> None:
        if self._errors:
            self.summary.setStyleSheet(ERROR_STYLE)

    def _show_refusal(self, report: Report, rows: dict[str, list[tuple[int, dict, dict]]]) -> None:
        """Refusals from the database checks at save time, beside the fields and rows they concern."""
        page = self._page
        field_issues: list[Issue] = []
        link_issues: dict[str, list[tuple]] = {name: [] for name in page.links}
        for issue in report.issues:
            match = LINK_ISSUE.match(issue.field)
            if issue.field not in page.rows and match and match["link"] in page.links:
                entries = rows.get(match["link"], [])
                index = int(match["row"]) - 1 if match["row"] else None
                table_row = entries[index][0] if index is not None and index < len(entries) else None
                link_issues[match["link"]].append((table_row, match["field"], issue.message, issue.severity))
            else:
                field_issues.append(issue)
        values = self._field_values()
        self._show_issues(field_issues, link_issues, {}, values)
        self.show_banner(f"Not saved. {report.summary()}")

    # --- values -----------------------------------------------------------------------------------
    def _field_values(self) -> dict[str, Any]:
        return {name: editor.raw() for name, editor in self._page.editors.items()}

    def _link_rows(self) -> tuple[dict[str, list[tuple[int, dict, dict]]], dict[str, list[tuple]]]:
        """Non-blank rows of each link table as (table row, values, the editors' own problems), and those
        problems as issues. A row left entirely blank is not a row: it is dropped rather than refused."""
        rows: dict[str, list[tuple[int, dict, dict]]] = {}
        issues: dict[str, list[tuple]] = {}
        for name, link_editor in self._page.links.items():
            rows[name], issues[name] = [], []
            for table_row, (row, own) in enumerate(zip(link_editor.raw_rows(), link_editor.problems(), strict=True)):
                if all(value in (None, "", False) or (isinstance(value, str) and not value.strip())
                       for value in row.values()):
                    continue
                rows[name].append((table_row, row, own))
                issues[name].extend((table_row, field, message, ERROR) for field, message in own.items())
        return rows, issues

    def _new_values(self, spec: RecordType) -> dict[str, Any]:
        """A new record starts with the database's own defaults where they mean something (a mission is active)."""
        values: dict[str, Any] = {}
        for field in spec.fields:
            column = spec.model._meta.fields.get(field.name)
            default = getattr(column, "default", None)
            values[field.name] = default if field.kind == "bool" and not callable(default) else None
        return values

    def _apply(self, values: dict[str, Any], links: dict[str, list[dict]]) -> None:
        self._loading = True
        try:
            for name, editor in self._page.editors.items():
                editor.set_stored(values.get(name))
            for name, link_editor in self._page.links.items():
                link_editor.set_rows(links.get(name, []))
        finally:
            self._loading = False

    def _state(self) -> tuple:
        page = self._page
        return (tuple(editor.state() for editor in page.editors.values()),
                tuple(link.state() for link in page.links.values()))

    def _capture(self) -> tuple[dict, dict]:
        page = self._page
        return ({name: editor.capture() for name, editor in page.editors.items()},
                {name: link.capture() for name, link in page.links.items()})

    def _restore(self, captured: tuple[dict, dict]) -> None:
        fields, links = captured
        self._loading = True
        try:
            for name, editor in self._page.editors.items():
                editor.restore(fields[name])
            for name, link_editor in self._page.links.items():
                link_editor.restore(links[name])
        finally:
            self._loading = False

    def _refresh_choices(self) -> None:
        """Reload the names reference boxes offer, but only when something was written since."""
        latest = schema.ChangeSet.select(schema.ChangeSet.id).order_by(schema.ChangeSet.id.desc()).scalar()
        if latest != self._choices_as_of:
            self._choices.refresh()
            self._choices_as_of = latest
        for page in self._pages.values():
            for editor in page.ref_editors():
                editor.forget_names()

    # --- presentation -----------------------------------------------------------------------------
    def _set_dirty(self, dirty: bool) -> None:
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirty_changed.emit(dirty)
        self._update_summary()
        self._update_buttons()

    def _update_buttons(self) -> None:
        loaded = self._spec is not None
        self.save_button.setEnabled(loaded and self._valid and self._dirty)
        self.revert_button.setEnabled(loaded and self._dirty)
        self.duplicate_button.setEnabled(loaded and self._record_id is not None)
        self.delete_button.setEnabled(loaded and self._record_id is not None)
        for widget in (self.save_button, self.revert_button, self.duplicate_button, self.delete_button,
                       self.footer_line):
            widget.setVisible(loaded)

    def _title_text(self) -> str:
        if self._spec is None:
            return ""
        if self._record_id is None:
            return f"New {self._spec.singular}"
        stored = services.snapshot(self._spec.model, self._record_id) or {}
        return services.record_label(self._spec, stored) if stored else f"{self._spec.singular} #{self._record_id}"

    def _update_header(self, note: str = "") -> None:
        spec = self._spec
        self.title.setText(self._title_text())
        if note:
            meta = f"{spec.singular.capitalize()} · {note}"
        elif self._record_id is None:
            meta = f"{spec.singular.capitalize()} · not saved yet · fields marked * are required"
        else:
            meta = f"{spec.singular.capitalize()} #{self._record_id} · version {self._version}"
            last = services.last_change(spec.model, self._record_id)
            if last:
                meta += f" · last changed by {last[0]} on {last[1].replace('T', ' ')[:16]}"
        self.meta.setText(meta)

    def _show_idle(self, message: str) -> None:
        self._validation_timer.stop()
        self._spec = None
        self._record_id, self._version = None, None
        self._baseline, self._initial = None, None
        self._errors = []
        self._valid = False
        self._hide_banner()
        self.title.setText("")
        self.meta.setText("")
        self.summary.setText("")
        self.idle_label.setText(message)
        self.idle_label.setVisible(True)
        self.scroll.setVisible(False)
        if self._dirty:
            self._dirty = False
            self.dirty_changed.emit(False)
        self._update_buttons()

    def show_banner(self, message: str, offer_reload: bool = False) -> None:
        """A message above the form (a refused save, someone else's change), with Reload if offered."""
        self.banner_text.setText(message)
        self.reload_button.setVisible(offer_reload)
        self.banner.setVisible(True)

    def _hide_banner(self) -> None:
        self.banner.setVisible(False)
        self.banner_text.setText("")

    @Slot(str)
    def _undo_refused(self, message: str) -> None:
        self.show_banner(message)

    @Slot()
    def _reload_clicked(self) -> None:
        if self._spec is not None and self._record_id is not None:
            self.load(self._spec.key, self._record_id)
        else:
            self._hide_banner()

    @Slot()
    def _update_tab_order(self) -> None:
        if self._page is None:
            return
        chain: list[QWidget] = []
        for editor in self._page.editors.values():
            chain.extend(editor.focus_widgets())
        for link in self._page.links.values():
            chain.extend(link.focus_widgets())
        chain.extend([self.save_button, self.revert_button, self.duplicate_button, self.delete_button])
        for first, second in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(first, second)
