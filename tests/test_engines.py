"""SQLite and PostgreSQL behave alike for everything PaxDesk stores and asks, and PostgreSQL connections
are configured and recovered as psql users expect."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from peewee import IntegrityError, TextField

from models import db as dbmodule
from models import dialect, schema, services
from models.db import DatabaseUnavailable, describe_target, open_database, set_setting
from models.queries import RecordQuery
from models.services import RecordRefused, WriteFailed, create_record, recording, save_record, snapshot
from tests.conftest import POSTGRES_URL, latest_change_set

needs_server = pytest.mark.skipif(not POSTGRES_URL, reason="PAXDESK_TEST_POSTGRES_URL names no PostgreSQL server")


def with_database(url: str, name: str, query: str = "") -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}", query=query))


# --- The same schema and the same answers ----------------------------------------------------------

@pytest.mark.parametrize(("start", "end", "accepted"), [
    ("2017~", "2023~", True),
    ("2013-02", "2013-02-15", True),
    ("2013-XX", "2013-05", True),
    ("2013-05%", "2013-05", True),
    ("2024-03-15?", "2024-03-22", True),
    ("2013-02", "2013-01", False),
    ("2024-03-22", "2024-03-15", False),
])
def test_date_order_check_is_the_same_on_both_engines(db, start, end, accepted):
    insert = schema.MediationEvent.insert(title="Talks", start_date=start, end_date=end)
    if accepted:
        insert.execute()
        assert schema.MediationEvent.get().end_date == end
    else:
        with pytest.raises(IntegrityError):
            insert.execute()


def test_natural_keys_ignore_case_but_pattern_characters_are_plain_text(db):
    create_record("actors", {"name": "GroupX1", "kind": "group_of_states"})
    create_record("actors", {"name": "50 and more Club", "kind": "ngo"})
    # '_' and '%' are wildcards to LIKE/ILIKE; as names they match only themselves.
    create_record("actors", {"name": "Group_1", "kind": "group_of_states"})
    create_record("actors", {"name": "50% Club", "kind": "ngo"})
    with pytest.raises(RecordRefused, match="actor 'GROUP_1' already exists"):
        create_record("actors", {"name": "GROUP_1", "kind": "group_of_states"})
    with pytest.raises(RecordRefused, match="already exists"):
        create_record("actors", {"name": "50% club", "kind": "ngo"})
    assert schema.Actor.select().count() == 4


def test_booleans_dates_and_timestamps_read_back_alike(db):
    kazakhstan = create_record("actors", {"name": "Kazakhstan", "kind": "state", "iso3": "KAZ", "m49": 398})
    undof = create_record("missions", {"acronym": "UNDOF", "name": "UN Disengagement Observer Force",
                                       "kind": "peacekeeping_operation", "active": False, "latitude": 33.1,
                                       "start_date": "1974-05-31"})
    figure = create_record("contributions", {"reporting_date": "2024-05-31", "contributor": kazakhstan,
                                             "mission": undof, "personnel_type": "Troops", "total_count": 139})
    stored = snapshot(schema.Mission, undof)
    assert stored["active"] is False and stored["latitude"] == 33.1 and stored["start_date"] == "1974-05-31"
    assert isinstance(schema.Mission.get_by_id(undof).created_at, dt.datetime)
    assert stored["created_at"] == schema.Mission.get_by_id(undof).created_at.isoformat()  # as the log keeps it
    assert snapshot(schema.Contribution, figure)["reporting_date"] == "2024-05-31"
    assert isinstance(schema.Contribution.get_by_id(figure).reporting_date, dt.date)
    assert isinstance(latest_change_set().at, dt.datetime)
    logged = json.loads(latest_change_set().entries.get().new_values)
    assert logged["reporting_date"] == "2024-05-31" and logged["total_count"] == 139
    assert RecordQuery("missions", filters={"active": "no"}).ids() == [undof]
    assert RecordQuery("missions", filters={"active": "yes"}).ids() == []
    assert RecordQuery("contributions", filters={"reporting_date": "2024-05"}).ids() == [figure]
    assert RecordQuery("missions", search="disengagement").ids() == [undof]  # case-insensitive on both


def test_settings_upsert_and_a_reopened_database_keeps_its_data(db, db_target):
    set_setting("database_name", "Team A")
    set_setting("database_name", "Team A (2024)")
    create_record("actors", {"name": "Kazakhstan", "kind": "state"})
    db.close()
    reopened = open_database(db_target)
    assert schema.Setting.get_by_id("database_name").value == "Team A (2024)"
    assert dbmodule.schema_version(reopened) == schema.SCHEMA_VERSION
    assert [a.name for a in schema.Actor.select()] == ["Kazakhstan"]
    reopened.close()


def test_migration_adds_a_column_on_both_engines(db, db_target, monkeypatch):
    from playhouse.migrate import migrate

    create_record("missions", {"acronym": "UNDOF", "name": "UN Disengagement Observer Force",
                               "kind": "peacekeeping_operation"})
    db.close()
    monkeypatch.setattr(dbmodule, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    monkeypatch.setattr(dbmodule, "MIGRATIONS", {schema.SCHEMA_VERSION + 1: lambda migrator, database: migrate(
        migrator.add_column("mission", "website", TextField(null=True)))})
    reopened = open_database(db_target)
    assert dbmodule.schema_version(reopened) == schema.SCHEMA_VERSION + 1
    assert "website" in [c.name for c in reopened.get_columns("mission")]
    assert schema.Mission.get().acronym == "UNDOF"
    reopened.close()


def test_rows_inserted_with_their_ids_do_not_block_new_records(db):
    schema.Actor.insert(id=1000, name="Imported with its id", kind="ngo").execute()
    dialect.sync_id_sequences(schema.Actor)
    new = create_record("actors", {"name": "Created afterwards", "kind": "ngo"})
    assert new > 1000


# --- Nothing half-written ------------------------------------------------------------------------------

def test_a_failure_in_the_middle_of_a_save_leaves_nothing(db, monkeypatch):
    before = latest_change_set()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "_replace_links", broken)
    with pytest.raises(RuntimeError):
        create_record("actors", {"name": "Kazakhstan", "kind": "state"}, links={"aliases": [{"alias": "KZ"}]})
    assert not schema.Actor.select().exists()
    assert latest_change_set() == before


def test_a_refused_record_inside_an_import_is_undone_alone(db):
    """The database refuses one record (a duplicate alias) in the middle of an import that skips bad rows:
    that record goes entirely, the others stay, on PostgreSQL (which aborts the whole transaction on an
    error unless a savepoint catches it) as on SQLite."""
    with recording("import", "Import actors") as recorder:
        save_record("actors", {"name": "Kazakhstan", "kind": "state"}, links={"aliases": [{"alias": "Qazaqstan"}]},
                    recorder=recorder)
        with pytest.raises(RecordRefused, match="the database refused a row"):
            save_record("actors", {"name": "Kazakh SSR", "kind": "state"},
                        links={"aliases": [{"alias": "QAZAQSTAN"}]}, recorder=recorder)
        save_record("actors", {"name": "Armenia", "kind": "state"}, recorder=recorder)
        assert recorder.count == 3
    assert sorted(a.name for a in schema.Actor.select()) == ["Armenia", "Kazakhstan"]
    assert [a.alias for a in schema.ActorAlias.select()] == ["Qazaqstan"]
    assert latest_change_set().entries.count() == 3


# --- Connections -------------------------------------------------------------------------------------

def test_passwords_never_shown():
    assert describe_target("postgresql://curator:s3cret@db.example.org:5432/paxdesk") == \
        "postgresql://curator@db.example.org:5432/paxdesk"
    assert describe_target("postgresql://curator@db.example.org/paxdesk?password=s3cret&sslmode=require") == \
        "postgresql://curator@db.example.org/paxdesk?sslmode=require"
    assert describe_target("/home/curator/paxdesk.sqlite3") == "/home/curator/paxdesk.sqlite3"


def test_an_unreachable_server_is_one_clear_line_without_the_password():
    started = time.perf_counter()
    with pytest.raises(DatabaseUnavailable) as refused:
        open_database("postgresql://curator:s3cret@127.0.0.1:9/paxdesk?connect_timeout=3")
    message = str(refused.value)
    assert message.startswith("Cannot open postgresql://curator@127.0.0.1:9/paxdesk")
    assert "s3cret" not in message and "\n" not in message.strip()
    assert time.perf_counter() - started < 10


@needs_server
def test_password_comes_from_pgpassword_or_the_password_file_as_for_psql(tmp_path, monkeypatch):
    """libpq, under psycopg2, reads PGPASSWORD and then PGPASSFILE (~/.pgpass by default) when the URL has no
    password; conn.info.password shows which one it will present (the test server trusts, so any works)."""
    url = urlsplit(POSTGRES_URL)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    password_file = tmp_path / "pgpass"
    password_file.write_text(f"{url.hostname}:{url.port or 5432}:*:{url.username}:from-the-file\n")
    password_file.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(password_file))
    database = dialect.server_database(POSTGRES_URL)
    assert database.connection().info.password == "from-the-file"
    database.close()
    monkeypatch.setenv("PGPASSWORD", "from-the-environment")
    assert database.connection().info.password == "from-the-environment"
    database.close()
    with_password = url._replace(netloc=f"{url.username}:p%40ss%3Aword@{url.hostname}:{url.port or 5432}")
    database = dialect.server_database(urlunsplit(with_password))
    assert database.connection().info.password == "p@ss:word"  # URL-quoted, as libpq expects it
    database.close()


@pytest.mark.postgresql_only
def test_a_schema_chosen_in_the_url_keeps_teams_apart(db, db_target):
    db.execute_sql("CREATE SCHEMA team_a")
    db.execute_sql("CREATE SCHEMA team_b")
    db.close()
    name = urlsplit(db_target).path.lstrip("/")
    open_database(with_database(POSTGRES_URL, name, "options=-csearch_path%3Dteam_a"))
    create_record("actors", {"name": "Kazakhstan", "kind": "state"})
    schema.database.close()
    open_database(with_database(POSTGRES_URL, name, "options=-csearch_path%3Dteam_b"))
    assert not schema.Actor.select().exists()
    tables = db.execute_sql("SELECT table_schema FROM information_schema.tables WHERE table_name = 'actor'")
    assert sorted(row[0] for row in tables.fetchall()) == ["public", "team_a", "team_b"]
    schema.database.close()


def terminate_own_connection(database) -> None:
    """What a server restart or an administrator does to PaxDesk's connection, from another connection."""
    backend = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    with psycopg2.connect(POSTGRES_URL) as admin, admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (backend,))
    time.sleep(0.1)


@pytest.mark.postgresql_only
def test_a_dropped_connection_is_reopened_for_the_next_read_and_save(db):
    create_record("actors", {"name": "Kazakhstan", "kind": "state"})
    terminate_own_connection(db)
    assert [a.name for a in schema.Actor.select()] == ["Kazakhstan"]  # read: reconnected, not an error
    terminate_own_connection(db)
    create_record("actors", {"name": "Armenia", "kind": "state"})  # the BEGIN reconnects too
    assert schema.Actor.select().count() == 2


@pytest.mark.postgresql_only
def test_a_save_whose_connection_drops_midway_is_retried_once_and_saved_once(db, monkeypatch):
    checks = []
    original = services.check_against_database

    def dropped_on_first_check(*args, **kwargs):
        checks.append(1)
        if len(checks) == 1:  # inside the save's transaction, after its change set was written
            terminate_own_connection(db)
        return original(*args, **kwargs)

    monkeypatch.setattr(services, "check_against_database", dropped_on_first_check)
    create_record("actors", {"name": "Kazakhstan", "kind": "state"})
    assert len(checks) == 2
    assert [a.name for a in schema.Actor.select()] == ["Kazakhstan"]
    assert schema.ChangeSet.select().count() == 1 and schema.ChangeLogEntry.select().count() == 1


@pytest.mark.postgresql_only
def test_a_server_that_stays_away_is_reported_not_crashed(db, monkeypatch):
    create_record("actors", {"name": "Kazakhstan", "kind": "state"})
    monkeypatch.setitem(db.connect_params, "port", 9)  # the server "moved away": reconnecting fails
    monkeypatch.setitem(db.connect_params, "connect_timeout", 2)
    terminate_own_connection(db)
    with pytest.raises(DatabaseUnavailable, match="Lost the connection to the database server"):
        schema.Actor.select().count()
    with pytest.raises(WriteFailed, match="connection to the database server was lost; nothing was saved"):
        create_record("actors", {"name": "Armenia", "kind": "state"})
    monkeypatch.undo()  # the server is back
    assert [a.name for a in schema.Actor.select()] == ["Kazakhstan"]
    create_record("actors", {"name": "Armenia", "kind": "state"})
    assert schema.Actor.select().count() == 2


def test_sqlite_write_transactions_take_the_write_lock_up_front(db, engine, monkeypatch):
    """BEGIN IMMEDIATE on SQLite: two processes never both read and then both try to write (which SQLite
    resolves by failing one with 'database is locked' at once, busy_timeout or not)."""
    begun = []
    original = db.begin
    monkeypatch.setattr(db, "begin", lambda *args: begun.append(args) or original(*args))
    create_record("actors", {"name": "Kazakhstan", "kind": "state"})
    assert begun == ([("IMMEDIATE",)] if engine == "sqlite" else [()])
    if engine == "sqlite":
        assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 5000


@pytest.mark.postgresql_only
def test_a_connection_lost_while_committing_is_not_retried_and_says_so(db, monkeypatch):
    """The server may or may not have committed: saving again could save twice, so PaxDesk says so instead."""
    original = db.commit
    calls = []

    def commit_after_losing_the_connection():
        calls.append(1)
        terminate_own_connection(db)
        return original()

    monkeypatch.setattr(db, "commit", commit_after_losing_the_connection)
    with pytest.raises(WriteFailed, match="may or may not have been saved. Reload") as refused:
        create_record("actors", {"name": "Kazakhstan", "kind": "state"})
    assert not refused.value.retryable and calls == [1]
    monkeypatch.undo()
    assert not schema.Actor.select().exists()  # here it had not: the connection died before COMMIT arrived


def test_ids_reserved_for_a_bulk_insert_never_collide_with_a_save_elsewhere(db):
    import threading

    create_record("actors", {"name": "Kazakhstan", "kind": "state"})
    with recording("import", "Import actors"):
        reserved = dialect.next_ids(schema.Actor, 3)
        if dialect.is_postgres():  # a save on another connection meanwhile (SQLite would wait for the lock)
            elsewhere = []
            thread = threading.Thread(target=lambda: (elsewhere.append(
                create_record("actors", {"name": "Armenia", "kind": "state"})), schema.database.close()))
            thread.start()
            thread.join(30)
            assert elsewhere and elsewhere[0] not in reserved
        schema.Actor.insert_many([{"id": i, "name": f"Imported {i}", "kind": "ngo"} for i in reserved]).execute()
    assert len(set(reserved)) == 3 and min(reserved) > 1
    assert create_record("actors", {"name": "Afterwards", "kind": "ngo"}) > max(reserved)


@needs_server
def test_seed_command_on_a_server_prints_no_password(postgres_server, capsys, monkeypatch):
    """The command line reaches PostgreSQL by URL (--db or PAXDESK_DB), and what it prints leaves the
    password out."""
    from main import main

    url = postgres_server.create(seeded=False)
    parts = urlsplit(url)
    with_password = urlunsplit(parts._replace(netloc=f"{parts.username}:s3cret@{parts.hostname}:{parts.port}"))
    try:
        assert main(["seed", "--db", with_password]) == 0
        printed = capsys.readouterr().out
        assert re.match(rf"Seeded {re.escape(url)}: \d+ new records", printed) and "s3cret" not in printed
        assert schema.Actor.select().count() > 200
        schema.database.close()
        monkeypatch.setenv("PAXDESK_DB", with_password)
        assert main(["seed"]) == 0
        assert capsys.readouterr().out.startswith(f"Seeded {url}: 0 new records")
    finally:
        schema.database.close()
        postgres_server.drop(url)
