"""Several users on one database at once, each with a real connection of their own (threads, processes):
no update is lost, a stale save is refused naming who saved first, and a killed import leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from models import schema, services
from models.services import StaleRecord, create_record, recording, update_record

ROOT = Path(__file__).resolve().parent.parent
WRITERS, EDITS = 8, 500


@pytest.fixture
def users(monkeypatch) -> threading.local:
    """Who is saving, per thread: the change log names the user of the thread that saved."""
    names = threading.local()
    monkeypatch.setattr(services, "current_user", lambda: getattr(names, "name", "tester"))
    return names


def mission(acronym: str) -> int:
    return create_record("missions", {"acronym": acronym, "name": f"Mission {acronym}", "kind": "observer_mission"})


def in_threads(*work):
    """Run each callable in its own thread (so on its own database connection); their results or errors."""
    results: list = [None] * len(work)

    def run(index: int, function) -> None:
        try:
            results[index] = function()
        except BaseException as exc:  # handed to the test, which asserts on it
            results[index] = exc
        finally:
            schema.database.close()  # this thread's connection

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a user's save never finished"
    return results


def update_entries(record_id: int) -> list[schema.ChangeLogEntry]:
    return list(schema.ChangeLogEntry.select().where(
        schema.ChangeLogEntry.table_name == "mission", schema.ChangeLogEntry.record_id == record_id,
        schema.ChangeLogEntry.action == "update").order_by(schema.ChangeLogEntry.id))


# --- Two users, one record ---------------------------------------------------------------------------

def test_stale_save_is_refused_naming_who_saved_first_and_their_values_stand(db, users):
    undof = mission("UNDOF")
    both_read, a_saved = threading.Barrier(2, timeout=30), threading.Event()

    def aigerim():
        users.name = "aigerim"
        version = schema.Mission.get_by_id(undof).version
        both_read.wait()
        update_record("missions", undof, {"headquarters": "Camp Faouar"}, expected_version=version)
        a_saved.set()
        return version

    def brendan():
        users.name = "brendan"
        version = schema.Mission.get_by_id(undof).version
        both_read.wait()
        assert a_saved.wait(30)
        update_record("missions", undof, {"headquarters": "Damascus"}, expected_version=version)

    a_read, b_outcome = in_threads(aigerim, brendan)
    assert a_read == 1
    assert isinstance(b_outcome, StaleRecord)
    assert "The mission 'UNDOF' was changed by aigerim at" in str(b_outcome)
    assert "reload it" in str(b_outcome)
    stored = schema.Mission.get_by_id(undof)
    assert (stored.headquarters, stored.version) == ("Camp Faouar", 2)
    [entry] = update_entries(undof)
    assert entry.change_set.user == "aigerim"


def test_overlapping_saves_wait_for_each_other_and_the_later_one_is_refused(db, users):
    """B saves while A's transaction is still open: B waits (SQLite: the write lock, PostgreSQL: the row
    lock), then finds A's version and is refused, instead of overwriting it or failing with 'locked'."""
    undof = mission("UNDOF")
    a_written, b_saving = threading.Event(), threading.Event()
    held_for = 0.5

    def aigerim():
        users.name = "aigerim"
        with recording("edit", "Edit mission 'UNDOF'") as recorder:
            update_record("missions", undof, {"headquarters": "Camp Faouar"}, expected_version=1, recorder=recorder)
            a_written.set()
            assert b_saving.wait(30)
            time.sleep(held_for)  # B is now blocked behind this open transaction

    def brendan():
        users.name = "brendan"
        assert a_written.wait(30)
        b_saving.set()
        started = time.perf_counter()
        try:
            update_record("missions", undof, {"headquarters": "Damascus"}, expected_version=1)
        except StaleRecord as exc:
            return exc, time.perf_counter() - started
        return None, time.perf_counter() - started

    a_outcome, (refusal, waited) = in_threads(aigerim, brendan)
    assert a_outcome is None
    assert isinstance(refusal, StaleRecord) and "was changed by aigerim" in str(refusal)
    assert waited >= held_for * 0.8  # it waited for A's commit rather than failing at once
    stored = schema.Mission.get_by_id(undof)
    assert (stored.headquarters, stored.version) == ("Camp Faouar", 2)
    assert [e.change_set.user for e in update_entries(undof)] == ["aigerim"]


# --- Killed in the middle of an import ------------------------------------------------------------------

def worker(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.concurrency_worker", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until_ready(process: subprocess.Popen) -> None:
    line = process.stdout.readline()
    if json.loads(line or "{}").get("ready") is not True:
        process.kill()
        raise AssertionError(f"worker did not start: {line!r} {process.stderr.read()}")


def counts() -> dict[str, int]:
    return {model._meta.table_name: model.select().count() for model in (
        schema.Actor, schema.ActorAlias, schema.Contribution, schema.ChangeSet, schema.ChangeLogEntry)}


# Two importers: record by record through the services (savepoints), and a real UN workbook (executemany).
IMPORTERS = {
    "record-by-record": lambda target, folder: ("import", target, "400", "60"),
    "un-workbook": lambda target, folder: ("workbook-import", target, "6000", str(folder)),
}


@pytest.mark.parametrize("importer", IMPORTERS)
def test_killed_import_process_leaves_no_partial_rows(seeded_db, db_target, tmp_path, importer):
    """SIGKILL of the importing process while its transaction is open and writing."""
    before = counts()
    process = worker(*IMPORTERS[importer](db_target, tmp_path))
    wait_until_ready(process)  # the first rows are written, uncommitted, and more are coming
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert counts() == before
    if seeded_db.__class__.__name__.startswith("Sqlite"):
        assert seeded_db.execute_sql("PRAGMA integrity_check").fetchone() == ("ok",)
    mission("UNTEST")  # the database takes writes again at once: no lock was left behind
    assert schema.Mission.select().where(schema.Mission.acronym == "UNTEST").exists()


@pytest.mark.postgresql_only
@pytest.mark.parametrize("importer", IMPORTERS)
def test_server_connection_terminated_mid_import_is_reported_and_leaves_nothing(seeded_db, db_target, tmp_path,
                                                                               importer):
    """pg_terminate_backend from another connection while the import's transaction is writing."""
    before = counts()
    victim = f"paxdesk-import-{os.getpid()}"
    process = worker(*IMPORTERS[importer](f"{db_target}?application_name={victim}", tmp_path))
    wait_until_ready(process)
    terminated = seeded_db.execute_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (victim,)
    ).fetchall()
    assert terminated == [(True,)]
    output, errors = process.communicate(timeout=60)
    assert process.returncode == 1, errors
    assert "Traceback" not in errors
    report = json.loads(output.strip().splitlines()[-1])
    said = report["refused"] if importer == "record-by-record" else report["errors"][-1]["reason"]
    assert "connection to the database server was lost; nothing was saved" in said
    assert counts() == before


# --- Many writers -------------------------------------------------------------------------------------

def test_eight_writers_lose_no_update_and_the_log_agrees_with_the_data(db, db_target, tmp_path):
    """8 processes × 500 saves of overlapping records, each naming the version it read just before:
    every save is applied or refused with a reason, and the change log tells the same story as the data."""
    record_ids = [mission(f"M{n}") for n in range(6)]
    start = tmp_path / "start"
    processes = [worker("edit", db_target, f"writer{w}", str(EDITS), ",".join(map(str, record_ids)), str(w),
                        str(start)) for w in range(WRITERS)]
    for process in processes:
        wait_until_ready(process)
    started = time.perf_counter()
    start.touch()
    reports = []
    for process in processes:
        output, errors = process.communicate(timeout=900)
        assert process.returncode == 0, errors
        reports.append(json.loads(output.strip().splitlines()[-1]))
    elapsed = time.perf_counter() - started

    applied = [tuple(a) for r in reports for a in r["applied"]]
    refused = [tuple(r_) for r in reports for r_ in r["refused"]]
    unexplained = [u for r in reports for u in r["unexplained"]]
    assert unexplained == []
    assert len(applied) + len(refused) == WRITERS * EDITS
    assert applied and refused  # the writers really did collide
    for _, _, kind, message in refused:
        assert (kind == "StaleRecord" and "was changed by writer" in message) or kind == "WriteFailed", message
    print(f"\n{db.__class__.__name__}: {WRITERS}×{EDITS} saves in {elapsed:.1f} s, {len(applied)} applied, "
          f"{len(refused)} refused ({Counter(r[2] for r in refused)})")

    applied_per_record = Counter(record_id for record_id, _ in applied)
    for record_id in record_ids:
        stored = schema.Mission.get_by_id(record_id)
        entries = update_entries(record_id)
        logged = [json.loads(e.new_values) for e in entries]
        # Every applied save, and only those, is in the log, in a gap-free chain of versions.
        assert stored.version - 1 == len(entries) == applied_per_record[record_id]
        assert [v["version"] for v in logged] == list(range(2, stored.version + 1))
        assert [json.loads(e.old_values)["version"] for e in entries] == list(range(1, stored.version))
        assert sorted(v["notes"] for v in logged) == sorted(value for rid, value in applied if rid == record_id)
        assert stored.notes == logged[-1]["notes"]
        # The log's user is the writer whose value it holds.
        assert all(e.change_set.user == json.loads(e.new_values)["notes"].split()[0] for e in entries)


# --- Collisions that are nobody's data ----------------------------------------------------------------

@pytest.mark.sqlite_only
def test_a_database_locked_too_long_is_a_refusal_with_a_reason(db, db_path):
    """Another process keeps the SQLite write lock for longer than this connection waits: the save is
    refused with a reason (and was tried twice), never a bare 'database is locked'."""
    import sqlite3

    from models.services import WriteFailed

    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    db.execute_sql("PRAGMA busy_timeout = 200")
    try:
        with pytest.raises(WriteFailed, match="the database stayed busy with another user's save") as refused:
            create_record("actors", {"name": "Kazakhstan", "kind": "state"})
        assert refused.value.retryable
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    create_record("actors", {"name": "Kazakhstan", "kind": "state"})  # free again: saved
    assert schema.Actor.select().count() == 1


@pytest.mark.postgresql_only
def test_a_deadlock_between_two_saves_refuses_one_with_a_reason(db, users):
    from models.services import WriteFailed

    first, second = mission("UNDOF"), mission("UNTSO")
    both_locked = threading.Barrier(2, timeout=30)

    def save(name: str, order: tuple[int, int]):
        def work():
            users.name = name
            with recording("edit", f"{name} edits two missions"):
                for number, record_id in enumerate(order):
                    schema.Mission.update(notes=name, version=schema.Mission.version + 1).where(
                        schema.Mission.id == record_id).execute()
                    if number == 0:
                        both_locked.wait()
        return work

    outcomes = in_threads(save("aigerim", (first, second)), save("brendan", (second, first)))
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1 and isinstance(refused[0], WriteFailed), outcomes
    assert "collided with another user's save (deadlock)" in str(refused[0]) and refused[0].retryable
    winner = "brendan" if outcomes[0] is refused[0] else "aigerim"
    assert {m.notes for m in schema.Mission.select()} == {winner}  # the loser left nothing behind


@pytest.mark.postgresql_only
def test_under_serializable_isolation_a_collision_is_retried_then_refused_as_stale(db, db_target, users):
    """A server configured for SERIALIZABLE fails the later of two overlapping saves with a serialization
    error: refused as safe to retry (a lone save is retried once by itself), and saving again finds the
    newer version and refuses it naming the winner."""
    from models.db import open_database

    undof = mission("UNDOF")
    db.close()
    open_database(f"{db_target}?options=-cdefault_transaction_isolation%3Dserializable")
    a_written, b_read = threading.Event(), threading.Event()

    def aigerim():
        users.name = "aigerim"
        with recording("edit", "Edit mission 'UNDOF'") as recorder:
            assert b_read.wait(30)
            update_record("missions", undof, {"headquarters": "Camp Faouar"}, expected_version=1, recorder=recorder)
            a_written.set()
            time.sleep(0.3)

    def brendan():
        users.name = "brendan"
        with recording("edit", "Edit mission 'UNDOF'") as recorder:
            schema.Mission.get_by_id(undof)  # B's snapshot is taken before A commits
            b_read.set()
            assert a_written.wait(30)
            update_record("missions", undof, {"headquarters": "Damascus"}, expected_version=1, recorder=recorder)

    a_outcome, b_outcome = in_threads(aigerim, brendan)
    assert a_outcome is None
    assert isinstance(b_outcome, services.WriteFailed) and "serialization failure" in str(b_outcome), b_outcome
    with pytest.raises(StaleRecord, match="was changed by aigerim"):  # what the retry of B's save finds
        update_record("missions", undof, {"headquarters": "Damascus"}, expected_version=1)
    assert schema.Mission.get_by_id(undof).headquarters == "Camp Faouar"
    schema.database.close()


@pytest.mark.postgresql_only
def test_a_save_during_an_import_takes_no_id_the_import_uses(seeded_db, db_target, tmp_path):
    """On PostgreSQL a curator may save while an import is writing (SQLite makes them wait for its lock):
    both go through, neither taking the other's id."""
    before = schema.Contribution.select().count()
    process = worker("workbook-import", db_target, "6000", str(tmp_path), "2")
    wait_until_ready(process)  # 2,000 rows written, uncommitted
    kazakhstan = schema.Actor.get(schema.Actor.iso3 == "KAZ").id
    unmiss = schema.Mission.get(schema.Mission.acronym == "UNMISS").id
    saved = create_record("contributions", {"reporting_date": "2022-01-31", "contributor": kazakhstan,
                                            "mission": unmiss, "personnel_type": "Troops", "total_count": 3})
    output, errors = process.communicate(timeout=120)
    assert process.returncode == 0, output + errors
    assert json.loads(output.strip().splitlines()[-1])["inserted"] == 6000
    assert schema.Contribution.select().count() == before + 6001
    assert schema.Contribution.get_by_id(saved).total_count == 3
