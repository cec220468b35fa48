"""Everything that differs between SQLite and PostgreSQL, in one place: the server connection class,
write transactions, case-insensitive matching, id sequences and the reading of driver errors.

Code elsewhere in models/ writes portable Peewee; when it needs engine-specific SQL it asks a function here.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import peewee
from peewee import (
    Database,
    DatabaseError,
    Expression,
    Field,
    InterfaceError,
    Model,
    OperationalError,
    PeeweeException,
    PostgresqlDatabase,
    SqliteDatabase,
)
from playhouse.db_url import parse as parse_url
from playhouse.shortcuts import ReconnectMixin

from models import schema

T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """The database cannot be opened, created or reached; the message says why in plain words."""


# What a read of the database may raise that is nobody's mistake in the data: shown to the user, never a traceback.
READ_ERRORS = (DatabaseUnavailable, PeeweeException)


class ConnectionLost(DatabaseUnavailable):
    """The server connection dropped and could not be re-established (a read was already retried once)."""


class TransactionFailed(Exception):
    """A write transaction did not go through for a reason that is nobody's data: a busy database, a
    deadlock, a dropped connection. `retryable` is True when the transaction certainly did not commit."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def current() -> Database:
    """The database the models are bound to."""
    return schema.database.obj


def fetch_all(sql: str, params: list) -> list[tuple]:
    """All rows of a read statement. Peewee turns the driver's errors into its own only while a statement starts;
    SQLite reports what it meets after the first row (a time limit's interruption, a damaged page) while the rows
    are fetched, so the fetch is translated too: callers catch Peewee's errors, never the driver's."""
    with peewee.__exception_wrapper__:
        return current().execute_sql(sql, params).fetchall()


class TooSlow(Exception):
    """A read gave up at the time limit it was given (see time_limit)."""


@contextmanager
def time_limit(seconds: float, check_every: int = 1000) -> Iterator[None]:
    """Interrupt the reads run inside once `seconds` have passed: they raise TooSlow, and the caller can finish the
    read elsewhere (the GUI thread must not wait on a scan of a million rows). SQLite asks every `check_every`
    virtual-machine steps; PostgreSQL runs the reads in a transaction with a statement timeout."""
    db = current()
    if is_postgres(db):
        if db.in_transaction():  # SET LOCAL would outlive the reads, to the end of the caller's transaction
            yield
            return
        try:
            with db.atomic():  # SET LOCAL lasts as long as the transaction; a timeout rolls it back
                db.execute_sql(f"SET LOCAL statement_timeout = {max(1, round(seconds * 1000))}")
                yield
        except OperationalError as exc:
            if "statement timeout" not in str(exc):
                raise
            raise TooSlow(f"gave up after {seconds:g} s") from None
        return
    connection = db.connection()
    deadline = time.perf_counter() + seconds
    connection.set_progress_handler(lambda: time.perf_counter() > deadline, check_every)
    try:
        yield
    except OperationalError as exc:
        if "interrupted" not in str(exc):
            raise
        raise TooSlow(f"gave up after {seconds:g} s") from None
    finally:
        connection.set_progress_handler(None, check_every)


def is_sqlite(db: Database | None = None) -> bool:
    return isinstance(db or current(), SqliteDatabase)


def is_postgres(db: Database | None = None) -> bool:
    return isinstance(db or current(), PostgresqlDatabase)


# --- PostgreSQL connection ---------------------------------------------------------------------------

class ServerDatabase(ReconnectMixin, PostgresqlDatabase):
    """PostgreSQL that reconnects once, outside a transaction, when the server dropped the connection
    (restart, idle timeout, network blip), and otherwise reports a lost connection in plain words."""

    # Fragments of psycopg2's messages, as Peewee wraps them, that mean "this connection is gone".
    reconnect_errors = (
        (OperationalError, "server closed the connection"),
        (OperationalError, "terminating connection"),
        (OperationalError, "connection has been closed"),
        (OperationalError, "could not receive data from server"),
        (OperationalError, "could not send data to server"),
        (OperationalError, "no connection to the server"),
        (OperationalError, "ssl connection has been closed"),
        (InterfaceError, "connection already closed"),
        (InterfaceError, "cursor already closed"),
    )

    def execute_sql(self, sql, params=None):
        try:
            return super().execute_sql(sql, params)
        except (OperationalError, InterfaceError) as exc:
            if not self.in_transaction() and is_connection_error(exc):
                raise ConnectionLost(f"Lost the connection to the database server: {first_line(exc)}") from exc
            raise


def server_database(url: str) -> ServerDatabase:
    """A PostgreSQL database for a postgresql:// URL. A password may be in the URL; without one libpq
    reads PGPASSWORD or ~/.pgpass (PGPASSFILE), as psql does. Query parameters pass through to libpq,
    e.g. ?sslmode=require or ?options=-csearch_path%3Dteam (a schema per team or per test run)."""
    kwargs: dict[str, Any] = parse_url(url, unquote_password=True, unquote_user=True)
    kwargs.setdefault("connect_timeout", 10)  # an unreachable server is reported, not waited on forever
    kwargs.setdefault("application_name", "PaxDesk")  # what an administrator sees in pg_stat_activity
    return ServerDatabase(**kwargs)


# --- Errors ------------------------------------------------------------------------------------------

_CONNECTION_FRAGMENTS = tuple(fragment for _, fragment in ServerDatabase.reconnect_errors) + (
    "could not connect to server", "connection refused", "connection to server at",
)
# SQLSTATEs after which PostgreSQL rolled the transaction back and a retry may well succeed.
_RETRYABLE_SQLSTATES = {
    "40001": "it collided with another user's save (serialization failure)",
    "40P01": "it collided with another user's save (deadlock)",
    "55P03": "a record it needed was locked by another user's save",
    "57014": "it took too long and was cancelled",
}


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionLost):
        return True
    text = str(exc).lower()
    return isinstance(exc, OperationalError | InterfaceError) and any(f in text for f in _CONNECTION_FRAGMENTS)


def _sqlstate(exc: BaseException) -> str | None:
    original = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    for candidate in (exc, original):
        code = getattr(candidate, "pgcode", None)
        if code:
            return code
    return None


def _is_busy(exc: BaseException) -> bool:
    """SQLite's 'database is locked' / 'database is busy' after busy_timeout ran out."""
    text = str(exc).lower()
    return isinstance(exc, OperationalError | sqlite3.OperationalError) and (
        "database is locked" in text or "database is busy" in text or "database table is locked" in text
    )


def _earliest(exc: BaseException) -> BaseException:
    """The first connection error in a chain: the rollback after a dropped connection fails too, less clearly."""
    earliest, seen = exc, exc.__context__
    while seen is not None:
        if any(fragment in str(seen).lower() for fragment in _CONNECTION_FRAGMENTS):
            earliest = seen
        seen = seen.__context__
    return earliest


def explain_failure(exc: BaseException, *, committing: bool) -> TransactionFailed | None:
    """A TransactionFailed for a driver error that is not about the data, or None for any other error."""
    if is_connection_error(exc):
        if committing:
            return TransactionFailed(
                "The connection to the database server was lost while saving; the change may or may not have "
                "been saved. Reload to see what the database holds.", retryable=False)
        return TransactionFailed(
            f"The connection to the database server was lost; nothing was saved ({first_line(_earliest(exc))})",
            retryable=True)
    code = _sqlstate(exc)
    if code in _RETRYABLE_SQLSTATES:
        return TransactionFailed(f"Nothing was saved: {_RETRYABLE_SQLSTATES[code]}. Try again.", retryable=True)
    if _is_busy(exc):
        return TransactionFailed(
            "Nothing was saved: the database stayed busy with another user's save for too long. Try again.",
            retryable=True)
    return None


# --- Transactions ------------------------------------------------------------------------------------

@contextmanager
def write_transaction(db: Database | None = None) -> Iterator[None]:
    """One write transaction (a savepoint when nested). SQLite takes the write lock up front (BEGIN
    IMMEDIATE) so that two processes never both read and then both try to upgrade to writing, which SQLite
    can only resolve by failing one with SQLITE_BUSY. PostgreSQL keeps its default READ COMMITTED: every
    update names the version it read (UPDATE ... WHERE version = ?), and a row lock makes the loser
    re-check that predicate after the winner commits. Driver errors that are nobody's data become
    TransactionFailed, saying whether the transaction may have committed."""
    db = db or current()
    outermost = not db.in_transaction()
    if outermost and is_sqlite(db):
        # --- SQLite only: the lock type of BEGIN.
        context = db.atomic("IMMEDIATE")
    else:
        context = db.atomic()
    body_done = False
    try:
        with context:
            yield
            body_done = True
    except (DatabaseError, InterfaceError, sqlite3.DatabaseError, DatabaseUnavailable) as exc:
        failure = explain_failure(exc, committing=body_done)
        if failure is None or not outermost:
            raise
        if is_connection_error(exc):
            _discard_connection(db)
        raise failure from exc


def _discard_connection(db: Database) -> None:
    """Forget a connection the server dropped, so that the next statement opens a fresh one."""
    if db.in_transaction():
        return
    try:
        db.close()
    except Exception:  # closing a dead connection may itself fail; its state is reset either way
        db.dispose()


def retry_unsaved(function: Callable[..., T]) -> Callable[..., T]:
    """Run a write once more when it failed without committing (busy, deadlock, dropped connection).
    Never inside an outer transaction: that one is already lost and its owner decides."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs) -> T:
        nested = schema.database.obj is not None and current().in_transaction()
        for attempt in range(2):
            try:
                return function(*args, **kwargs)
            except Exception as exc:
                if nested or attempt == 1 or not getattr(exc, "retryable", False):
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")

    return wrapper


# --- SQL that differs --------------------------------------------------------------------------------

def equals_ignoring_case(column: Field, value: str) -> Expression:
    """`column` equals `value` apart from letter case, as a natural-key lookup wants it."""
    if is_sqlite():
        # --- SQLite only: the built-in NOCASE collation (ASCII letters).
        return column.collate("NOCASE") == value
    # PostgreSQL: ILIKE with the pattern characters escaped, so that it means equality.
    return column.ilike(value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))


def next_ids(model: type[Model], count: int) -> list[int]:
    """`count` fresh ids for rows a bulk writer inserts with explicit ids (executemany). Call it inside the
    write transaction. PostgreSQL: drawn from the table's sequence, so that a save on another connection
    meanwhile never takes the same id (MAX(id) + 1 would). SQLite: after MAX(id), which is safe because the
    write transaction holds the only write lock (BEGIN IMMEDIATE)."""
    if count <= 0:
        return []
    db = current()
    table = model._meta.table_name
    if is_postgres(db):
        cursor = db.execute_sql("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                                (table, count))
        return [row[0] for row in cursor.fetchall()]
    # --- SQLite only: ids follow the largest one in use.
    start = (db.execute_sql(f'SELECT MAX(id) FROM "{table}"').fetchone()[0] or 0) + 1
    return list(range(start, start + count))


def sync_id_sequences(*models: type[Model]) -> None:
    """After rows were inserted with explicit ids (an import that keeps ids, an undo of a delete), move
    PostgreSQL's id sequences past them so that the next new record does not collide. SQLite needs nothing:
    its next id is always max(id) + 1."""
    db = current()
    if not is_postgres(db):
        return
    for model in models:
        table = model._meta.table_name
        db.execute_sql(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) "
            f'FROM "{table}"', (table,))
