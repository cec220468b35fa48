"""The database a command-line import writes to: opened, created, seeded with reference data when the rows
need it, or, for a dry run, a scratch copy so that nothing of the user's is written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from models import schema
from models.db import describe_target, is_url, open_database
from models.importing import ImportRefused
from models.seeding import seed_database


def open_import_database(target: str, kind: str | None, notes: list[str], scratch: Path | None = None,
                         exists: bool = True) -> None:
    """Open the import's database. `kind` None: just open an existing one. Otherwise make sure it can take
    the rows: a new file is created; UN and mapped rows name countries and missions, so a database without
    actors is seeded first (a data workbook brings its own, with their ids, and goes in untouched). In a dry
    run (`scratch` a folder) nothing of the user's is written: a new or unseeded database is tried on a
    scratch copy."""
    if kind is None:
        open_database(target)
        return
    needs_seed = kind != "paxdesk" and (not exists or not schema.Actor.select().exists())
    if scratch is not None and (not exists or needs_seed):
        if is_url(target):
            raise ImportRefused(f"{describe_target(target)} holds no reference data; seed it before a dry run")
        copy = scratch / "dry-run.sqlite3"
        if exists:
            source = sqlite3.connect(Path(target).expanduser())
            destination = sqlite3.connect(copy)
            try:
                source.backup(destination)
            finally:
                source.close()
                destination.close()
        open_database(copy)
        notes.append(f"Dry run on a scratch copy: {describe_target(target)} is left as it is"
                     if exists else f"Dry run on a scratch database: {describe_target(target)} is not created")
    elif not exists:
        open_database(target)
        notes.append(f"Created the database {describe_target(target)}")
    if needs_seed:
        seeded = seed_database()
        notes.append(f"Seeded reference data first ({seeded.total:,} records: countries, organisations, missions)")
