"""File → Open server database…: a postgresql:// URL and a password kept for this connection only."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlsplit, urlunsplit

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from gui.tasks import BackgroundTask
from models.db import connect, describe_target

EXAMPLE_URL = "postgresql://curator@db.example.org:5432/paxdesk"
ERROR_STYLE = ("QLabel { background: #fdecea; border: 1px solid #e6b0aa; border-radius: 4px; padding: 6px 8px;"
               " color: #7b241c; }")


class BadServerUrl(ValueError):
    """The typed URL cannot name a server database; the message says what to fix."""


def server_url(text: str, password: str = "") -> str:
    """The URL to connect with: `text` checked, with `password` (if any) put in it, percent-encoded. Raises
    BadServerUrl with a one-line explanation."""
    text = text.strip()
    if not text:
        raise BadServerUrl(f"Type the database's URL, e.g. {EXAMPLE_URL}")
    if any(character.isspace() for character in text):
        raise BadServerUrl("A URL has no spaces in it.")
    if not text.startswith(("postgresql://", "postgres://")):
        raise BadServerUrl(f"A server database's URL starts with postgresql://, e.g. {EXAMPLE_URL}")
    parts = urlsplit(text)
    if not parts.hostname:
        raise BadServerUrl(f"The URL names no server: postgresql://user@SERVER:5432/database, e.g. {EXAMPLE_URL}")
    try:
        port = parts.port
    except ValueError:
        raise BadServerUrl("The port after the server's name must be a number from 1 to 65535.") from None
    if port == 0:
        raise BadServerUrl("The port after the server's name must be a number from 1 to 65535.")
    if not parts.path.strip("/"):
        raise BadServerUrl(f"The URL names no database: add /database after the server, e.g. {EXAMPLE_URL}")
    if not password:
        return text
    credentials, _, host = parts.netloc.rpartition("@")
    user = credentials.split(":", 1)[0]  # a password typed into the URL gives way to the password field
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def probe(url: str) -> str | None:
    """Connect once and disconnect: None when the server answers, else why not in one line (never the
    password: libpq's messages do not repeat it, and the target is named without it)."""
    try:
        database = connect(url)
        database.connect()
        database.close()
    except Exception as exc:  # the driver's own errors: refused, unknown host, authentication failed…
        reason = " ".join(str(exc).split()) or exc.__class__.__name__
        return f"Cannot connect to {describe_target(url)}: {reason}"
    return None


class OpenServerDialog(QDialog):
    """Asks for the URL and password, checks that the server answers (off the GUI thread: an unreachable
    server may take seconds to time out), then hands the URL to `opener`, which switches the window to it
    and returns None, or returns why it could not; the dialog then shows why and stays open."""

    connecting_finished = Signal()  # a connection attempt ended, whichever way

    def __init__(self, opener: Callable[[str], str | None], url: str = "", message: str = "",
                 parent: QWidget | None = None):
        super().__init__(parent)
        self._opener = opener
        self._task: BackgroundTask | None = None
        self._url = ""  # the URL being tried, password included: in memory only
        self.setObjectName("OpenServerDialog")
        self.setWindowTitle("Open server database")
        self.setMinimumWidth(560)

        intro = QLabel("Open a PaxDesk database kept on a PostgreSQL server, shared with other curators. "
                       "A new, empty database gets the reference data.", self)
        intro.setWordWrap(True)
        self.url_edit = QLineEdit(url, self)
        self.url_edit.setObjectName("ServerUrl")
        self.url_edit.setPlaceholderText(EXAMPLE_URL)
        self.url_edit.setAccessibleName("Database URL")
        self.url_edit.setClearButtonEnabled(True)
        self.password_edit = QLineEdit(self)
        self.password_edit.setObjectName("ServerPassword")
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText("Leave empty to use PGPASSWORD or ~/.pgpass")
        self.password_edit.setAccessibleName("Password")
        hint = QLabel("Used for this connection only; PaxDesk never stores it.", self)
        hint.setStyleSheet("color: #5f6b76;")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(8)
        form.addRow("Database &URL:", self.url_edit)
        form.addRow("&Password:", self.password_edit)
        form.addRow("", hint)

        self.message_label = QLabel(self)
        self.message_label.setObjectName("ServerMessage")
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.setStyleSheet(ERROR_STYLE)
        self.message_label.setVisible(False)
        self.status_label = QLabel(self)
        self.status_label.setObjectName("ServerStatus")
        self.status_label.setStyleSheet("color: #5f6b76;")
        self.status_label.setVisible(False)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open
                                        | QDialogButtonBox.StandardButton.Cancel, self)
        self.open_button = self.buttons.button(QDialogButtonBox.StandardButton.Open)
        self.buttons.accepted.connect(self.try_open)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 14)
        layout.setSpacing(12)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.message_label)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        if message:
            self.show_message(message)
        (self.password_edit if url else self.url_edit).setFocus()

    @property
    def busy(self) -> bool:
        return self._task is not None

    def show_message(self, message: str) -> None:
        self.message_label.setText(message)
        self.message_label.setVisible(bool(message))

    @Slot()
    def try_open(self) -> None:
        """Check the URL, then try the server in the background; the result arrives in _probed."""
        if self.busy:
            return
        try:
            url = server_url(self.url_edit.text(), self.password_edit.text())
        except BadServerUrl as exc:
            self.show_message(str(exc))
            self.url_edit.setFocus()
            return
        self.show_message("")
        self._set_busy(f"Connecting to {describe_target(url)}…")
        task = BackgroundTask(lambda _progress, target=url: probe(target), self)
        # A bound slot: called on the GUI thread, and self.sender() tells an abandoned attempt apart.
        task.finished.connect(self._probed)
        self._task, self._url = task, url
        task.start()

    @Slot(object)
    def _probed(self, problem: str | None) -> None:
        if self.sender() is not self._task:
            return  # cancelled meanwhile
        self._task = None
        url, self._url = self._url, ""
        error = problem if problem is not None else self._opener(url)
        self._set_busy("")
        self.connecting_finished.emit()
        if error:
            self.show_message(error)
            return
        self.accept()

    def _set_busy(self, text: str) -> None:
        self.status_label.setText(text)
        self.status_label.setVisible(bool(text))
        for widget in (self.url_edit, self.password_edit, self.open_button):
            widget.setEnabled(not text)

    def reject(self) -> None:
        # A connection attempt still waiting for its server ends on its own; its answer is ignored.
        self._task = None
        super().reject()
