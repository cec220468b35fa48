"""Schema versions: an older database is backed up and migrated; a newer one is refused."""

import sqlite3

import pytest
from peewee import TextField

from models import db as dbmodule
from models import schema
from models.db import DatabaseUnavailable, open_database
from models.importing import import_file
from models.services import create_record, last_change, revert_change_set
from tests.un_files import un_file


def add_mission_website(migrator, database):
    from playhouse.migrate import migrate

    migrate(migrator.add_column("mission", "website", TextField(null=True)))


def test_older_database_is_backed_up_then_migrated(db_path, monkeypatch):
    database = open_database(db_path)
    create_record("missions", {"acronym": "UNDOF", "name": "UN Disengagement Observer Force",
                               "kind": "peacekeeping_operation"})
    database.close()
    current = schema.SCHEMA_VERSION
    monkeypatch.setattr(dbmodule, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(dbmodule, "MIGRATIONS", {**dbmodule.MIGRATIONS, current + 1: add_mission_website})

    database = open_database(db_path)
    assert dbmodule.schema_version(database) == current + 1
    assert "website" in [c.name for c in database.get_columns("mission")]
    assert schema.Mission.get(schema.Mission.acronym == "UNDOF").name == "UN Disengagement Observer Force"
    database.close()

    [backup] = db_path.parent.glob(f"*.before-migration-v{current}.*.bak.sqlite3")
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


def test_a_version_1_database_gains_change_log_ranges_and_imports_into_them(seeded_db, db_target, tmp_path):
    seeded_db.execute_sql('DROP INDEX "change_log_entry_ranges"')
    seeded_db.execute_sql('ALTER TABLE "change_log_entry" DROP COLUMN "last_record_id"')
    schema.Setting.update(value="1").where(schema.Setting.key == "schema_version").execute()
    seeded_db.close()

    database = open_database(db_target)
    assert dbmodule.schema_version(database) == 2
    assert "last_record_id" in [c.name for c in database.get_columns("change_log_entry")]
    assert "change_log_entry_ranges" in [index.name for index in database.get_indexes("change_log_entry")]
    before = schema.Contribution.select().count()
    _, result = import_file(un_file(tmp_path / "un.xlsx", [("Kazakhstan", "KAZ", "UNIFIL", "Troops", 1, 8),
                                                             ("Kazakhstan", "KAZ", "UNIFIL", "Staff Officer", 0, 2)]))
    assert (result.inserted, result.written) == (2, True)
    newest = schema.Contribution.select().order_by(schema.Contribution.id.desc()).first()
    assert last_change(schema.Contribution, newest.id)[0] == schema.ChangeSet.get_by_id(result.change_set_id).user
    revert_change_set(result.change_set_id)
    assert schema.Contribution.select().count() == before
    database.close()
