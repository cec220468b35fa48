"""Opening a PaxDesk database (SQLite file or PostgreSQL URL): connection settings, schema, migrations."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path

import platformdirs
from peewee import Database, IntegerField, PostgresqlDatabase, SqliteDatabase
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as migrate_schema

from models.dialect import ConnectionLost, DatabaseUnavailable, server_database
from models.schema import ALL_TABLES, SCHEMA_VERSION, ChangeLogEntry, Setting, database

__all__ = ["ConnectionLost", "DatabaseUnavailable", "open_database", "connect", "describe_target", "set_setting"]

SQLITE_PRAGMAS = {
    "foreign_keys": 1,
    "journal_mode": "wal",
    # Another PaxDesk window may hold the write lock for a moment; wait rather than fail.
    "busy_timeout": 10_000,
    "synchronous": "normal",
    # 16 MB of page cache instead of SQLite's 2 MB: a 100,000-row import keeps its indexes in memory. Every
    # connection (the window's, each worker's) holds its own, so more costs memory: at 64 MB a window on a million
    # contributions passed 300 MB after a few sorts, and the import was no faster (benchmarks/).
    "cache_size": -16_384,
}

# version reached → function that upgrades the schema from the version before it.
Migration = Callable[[SchemaMigrator, Database], None]


def _change_log_ranges(migrator: SchemaMigrator, db: Database) -> None:
    """Version 2: a change-log entry may stand for a range of inserted rows (ChangeLogEntry.last_record_id)."""
    migrate_schema(migrator.add_column(ChangeLogEntry._meta.table_name, "last_record_id", IntegerField(null=True)))
    ChangeLogEntry._schema.create_indexes(safe=True)


MIGRATIONS: dict[int, Migration] = {2: _change_log_ranges}


def default_database_path() -> Path:
    return Path(platformdirs.user_data_dir("PaxDesk", appauthor=False)) / "paxdesk.sqlite3"


def is_url(target: str) -> bool:
    return "://" in target


def describe_target(target: str) -> str:
    """The target as it may be shown or logged: a URL loses its password."""
    if not is_url(target):
        return target
    scheme, rest = target.split("://", 1)
    rest, _, query = rest.partition("?")
    if "@" in rest:
        credentials, host = rest.rsplit("@", 1)
        rest = f"{credentials.split(':', 1)[0]}@{host}"
    # libpq also takes a password as a query parameter; keep the other parameters (sslmode, options).
    kept = [part for part in query.split("&") if part and not part.lower().startswith("password=")]
    return f"{scheme}://{rest}" + (f"?{'&'.join(kept)}" if kept else "")


def connect(target: str | Path) -> Database:
    """A Peewee database for a SQLite path or a postgresql:// URL; not yet bound to the models."""
    text = str(target)
    if is_url(text):
        if text.startswith("sqlite:///"):
            return connect(text.removeprefix("sqlite:///"))
        if not text.startswith(("postgresql://", "postgres://")):
            raise DatabaseUnavailable(f"Unsupported database URL {describe_target(text)}: use postgresql://")
        return server_database(text)
    path = Path(text).expanduser()
    if path.exists() and path.is_dir():
        raise DatabaseUnavailable(f"{path} is a folder, not a database file")
    if path.exists() and not _looks_like_sqlite(path):
        raise DatabaseUnavailable(f"{path} is not a PaxDesk database (not an SQLite file)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnavailable(f"Cannot create the folder for {path}: {exc.strerror}") from exc
    return SqliteDatabase(str(path), pragmas=SQLITE_PRAGMAS)


def _looks_like_sqlite(path: Path) -> bool:
    if path.stat().st_size == 0:
        return True
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def open_database(target: str | Path) -> Database:
    """Bind the models to `target`, creating the schema or migrating it (after a backup) as needed."""
    db = connect(target)
    database.initialize(db)
    try:
        db.connect(reuse_if_open=True)
        _ensure_schema(db)
    except Exception as exc:  # incl. driver-specific errors, e.g. a PostgreSQL server that does not answer
        db.close()
        # libpq explains over several lines; one line reads better in a dialog and on the command line.
        reason = " ".join(str(exc).split())
        raise DatabaseUnavailable(f"Cannot open {describe_target(str(target))}: {reason}") from exc
    return db


def set_setting(key: str, value: str) -> None:
    """Store a data setting (an upsert both SQLite and PostgreSQL understand; REPLACE is SQLite's own)."""
    Setting.insert(key=key, value=value).on_conflict(conflict_target=[Setting.key], update={Setting.value: value}) \
        .execute()


def schema_version(db: Database) -> int:
    if not db.table_exists(Setting._meta.table_name):
        return 0
    row = Setting.get_or_none(Setting.key == "schema_version")
    return int(row.value) if row else 0


def _ensure_schema(db: Database) -> None:
    if not db.table_exists(Setting._meta.table_name):
        with db.atomic():
            db.create_tables(ALL_TABLES)
            set_setting("schema_version", str(SCHEMA_VERSION))
        return
    current = schema_version(db)
    if current > SCHEMA_VERSION:
        raise DatabaseUnavailable(
            f"This database was written by a newer PaxDesk (schema {current}, this one knows {SCHEMA_VERSION})"
        )
    if current < SCHEMA_VERSION:
        migrate(db, current)


def migrate(db: Database, current: int) -> Path | None:
    """Run the migrations after `current`, each in a transaction, after backing the file up."""
    backup = backup_database(db, reason=f"before-migration-v{current}")
    migrator = SchemaMigrator.from_database(db)
    for version in range(current + 1, SCHEMA_VERSION + 1):
        with db.atomic():
            MIGRATIONS[version](migrator, db)
            set_setting("schema_version", str(version))
    return backup


def backup_database(db: Database, reason: str) -> Path | None:
    """Copy a SQLite database beside itself (consistent even while in use); None for a server database,
    whose backups belong to its administrator."""
    if not isinstance(db, SqliteDatabase) or isinstance(db, PostgresqlDatabase):
        return None
    source = Path(db.database)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = source.with_name(f"{source.stem}.{reason}.{stamp}.bak{source.suffix}")
    destination = sqlite3.connect(target)
    try:
        db.connection().backup(destination)
    finally:
        destination.close()
    return target
