"""Schema versions: an older database is backed up and migrated; a newer one is refused."""

import sqlite3

import pytest
from peewee import TextField

from models import db as dbmodule
from models import schema
from models.db import DatabaseUnavailable, open_database
from models.services import create_record


def add_mission_website(migrator, database):
    from playhouse.migrate import migrate

    migrate(migrator.add_column("mission", "website", TextField(null=True)))


def test_older_database_is_backed_up_then_migrated(db_path, monkeypatch):
    database = open_database(db_path)
    create_record("missions", {"acronym": "UNDOF", "name": "UN Disengagement Observer Force",
                               "kind": "peacekeeping_operation"})
    database.close()
    monkeypatch.setattr(dbmodule, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(dbmodule, "MIGRATIONS", {2: add_mission_website})

    database = open_database(db_path)
    assert dbmodule.schema_version(database) == 2
    assert "website" in [c.name for c in database.get_columns("mission")]
    assert schema.Mission.get(schema.Mission.acronym == "UNDOF").name == "UN Disengagement Observer Force"
    database.close()

    [backup] = db_path.parent.glob("*.before-migration-v1.*.bak.sqlite3")
    with sqlite3.connect(backup) as old:
        columns = [row[1] for row in old.execute("PRAGMA table_info(mission)")]
        assert "website" not in columns
        assert old.execute("SELECT acronym FROM mission").fetchall() == [("UNDOF",)]


def test_newer_database_is_refused_untouched(db_path):
    database = open_database(db_path)
    schema.Setting.replace(key="schema_version", value="99").execute()
    database.close()
    with pytest.raises(DatabaseUnavailable, match="newer PaxDesk"):
        open_database(db_path)
    assert not list(db_path.parent.glob("*.bak*"))
