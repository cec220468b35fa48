"""Importing UN contribution files: both header vintages, every date style, titles above the header, any column
order, reconciliation hits and misses, error policies and modes, dry runs, re-imports, undo, cancel, and the
error report that the curator fixes and imports again."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import openpyxl
import pytest
import xlsxwriter

from models import dialect, import_writing, schema
from models.import_report import write_error_report
from models.importing import (
    ImportOptions,
    ImportSource,
    apply_plan,
    import_file,
    stage_import,
)
from models.progress import Cancelled, Progress
from models.records import RECORD_TYPES
from models.services import StaleRecord, last_change, record_label, revert_change_set, snapshot, update_record
from tests.un_files import HUB

OLDER = ["Contributing_Country", "ISOCode3", "Mission_Acronym", "Personnel_Type", "Female_Personnel",
         "Male_Personnel", "Last_Reporting_Date"]
MAY = dt.date(2023, 5, 31)  # the founding case holds figures of 31 May 2024; these are new


def workbook(path: Path, headers: list[str], rows: list[list], titles: list[str] = (), sheet: str = "Data") -> Path:
    """An .xlsx whose dates are real Excel dates (date-formatted numbers), as Excel and the UN write them."""
    book = xlsxwriter.Workbook(str(path))
    ws = book.add_worksheet(sheet)
    dates = book.add_format({"num_format": "dd/mm/yyyy"})
    for index, title in enumerate(titles):
        ws.write(index, 0, title)
    ws.write_row(len(titles), 0, headers)
    for r, row in enumerate(rows, start=len(titles) + 1):
        for c, value in enumerate(row):
            if isinstance(value, dt.date):
                ws.write_datetime(r, c, dt.datetime.combine(value, dt.time()), dates)
            elif isinstance(value, str):
                ws.write_string(r, c, value)  # write() would turn "=…" into a formula
            elif value is not None:
                ws.write(r, c, value)
    book.close()
    return path


def hub_row(country: str, iso: str, mission: str, kind: str, female: int, male: int, date=MAY, m49="") -> list:
    return [1, country, iso, m49, mission, kind, female, male, date]


def actor_id(name: str) -> int:
    return schema.Actor.get(schema.Actor.name == name).id


def contributions() -> dict[tuple, tuple]:
    """(date, contributor, mission, type) → (female, male, total) of every stored contribution."""
    c = schema.Contribution
    return {(row.reporting_date, row.contributor.name, row.mission.acronym if row.mission else None,
             row.personnel_type): (row.female_count, row.male_count, row.total_count) for row in c.select()}


def change_sets() -> int:
    return schema.ChangeSet.select().count()


def test_hub_vintage_imports_each_row_as_a_contribution_with_its_total(seeded_db, tmp_path):
    path = workbook(tmp_path / "hub.xlsx", HUB, [
        hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 12, 127),
        hub_row("Kazakhstan", "KAZ", "UNIFIL", "Staff Officer", 0, 4),
        hub_row("Ireland", "IRL", "UNDOF", "Troops", 9, 120),
    ])
    before = change_sets()

    plan, result = import_file(path)

    assert (result.inserted, result.updated, result.rejected, result.written) == (3, 0, 0, True)
    stored = contributions()
    assert stored[(MAY, "Kazakhstan", "UNDOF", "Troops")] == (12, 127, 139)
    assert stored[(MAY, "Ireland", "UNDOF", "Troops")] == (9, 120, 129)
    assert change_sets() == before + 1
    change_set = schema.ChangeSet.get_by_id(result.change_set_id)
    assert change_set.kind == "import" and "hub.xlsx" in change_set.summary
    # One log entry holds the three new rows; each shows who imported it.
    [entry] = change_set.entries
    new_ids = sorted(row.id for row in schema.Contribution.select().where(schema.Contribution.id >= entry.record_id))
    assert (entry.action, entry.last_record_id - entry.record_id + 1, len(new_ids)) == ("insert", 3, 3)
    assert {last_change(schema.Contribution, one)[0] for one in new_ids} == {change_set.user}
    if dialect.is_sqlite():  # a server database's backups are its administrator's (backup_database: None)
        assert result.backup is not None and result.backup.exists()


def test_older_vintage_below_titles_in_any_order_with_every_date_style(seeded_db, tmp_path):
    headers = ["Last_Reporting_Date", "Personnel_Type", "Male_Personnel", "Mission_Acronym", "Female_Personnel",
               "ISOCode3", "Contributing_Country"]
    rows = [
        [dt.date(2024, 4, 30), "Troops", 100, "UNDOF", 3, "IND", "India"],  # an Excel date
        ["31/05/2024", "Troops", 101, "UNDOF", 3, "IND", "India"],  # day/month/year text
        ["30-Nov-20", "Troops", 102, "UNDOF", 3, "IND", "India"],  # the older files' own style
        ["2024-06-30", "Troops", 103, "UNDOF", 3, "IND", "India"],  # ISO text
        [45504, "Troops", 104, "UNDOF", 3, "IND", "India"],  # a date serial without a date format
    ]
    path = workbook(tmp_path / "older.xlsx", headers, rows,
                    titles=["Troop and police contributors", "Source: United Nations, DPO"])

    _, result = import_file(path)

    assert result.inserted == 5, result.errors
    stored = contributions()
    for date, male in [(dt.date(2024, 4, 30), 100), (dt.date(2024, 5, 31), 101), (dt.date(2020, 11, 30), 102),
                       (dt.date(2024, 6, 30), 103), (dt.date(2024, 7, 31), 104)]:
        assert stored[(date, "India", "UNDOF", "Troops")] == (3, male, male + 3)


def test_countries_are_found_by_name_alias_and_iso_code(seeded_db, tmp_path):
    turkey, iran = schema.Actor.get(schema.Actor.iso3 == "TUR").id, schema.Actor.get(schema.Actor.iso3 == "IRN").id
    path = workbook(tmp_path / "names.xlsx", HUB, [
        hub_row("Türkiye", "", "UNIFIL", "Troops", 1, 10),
        hub_row("Turkiye", "", "UNIFIL", "Staff Officer", 1, 10),
        hub_row("Turkey", "", "UNIFIL", "Experts on Mission", 1, 10),
        hub_row("", "TUR", "UNIFIL", "Individual Police", 1, 10),  # the ISO code alone
        hub_row("Iran (Islamic Republic of)", "IRN", "UNIFIL", "Troops", 0, 5),
        hub_row("", "", "UNIFIL", "Formed Police Units", 0, 5, m49=792),  # the M49 code alone
    ])
    actors = schema.Actor.select().count()

    plan, result = import_file(path)

    assert result.inserted == 6, result.errors
    ids = [row.values["contributor"] for row in plan.sheets[0].rows]
    assert ids == [turkey, turkey, turkey, turkey, iran, turkey]
    assert schema.Actor.select().count() == actors  # nothing was created on the way


def test_what_does_not_match_exactly_is_an_error_naming_the_closest_candidates(seeded_db, tmp_path):
    path = workbook(tmp_path / "misses.xlsx", HUB, [
        hub_row("Tukey", "", "UNIFIL", "Troops", 1, 10),
        hub_row("Kazakhstan", "KAZ", "UNDFO", "Troops", 1, 10),
        hub_row("Kazakhstan", "KAZ", "UNDOF", "Troop", 1, 10),
        hub_row("Greece", "TUR", "UNDOF", "Troops", 1, 10),
        hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", -1, 10),
    ])
    actors, missions = schema.Actor.select().count(), schema.Mission.select().count()

    _, result = import_file(path)

    assert not result.written and result.rejected == 5
    by_row = {error.row: error for error in result.errors}
    assert by_row[2].column == "contributing_country" and by_row[2].value == "Tukey"
    assert "No actor called 'Tukey'; closest: Turkey (" in by_row[2].reason and "%" in by_row[2].reason
    assert by_row[3].column == "mission_acronym" and "closest: UNDOF (" in by_row[3].reason
    assert by_row[4].column == "personnel_type"
    assert "not one of the UN's five personnel types; closest: Troops (" in by_row[4].reason
    assert "TUR is Türkiye, but 'Greece' is Greece" in by_row[5].reason
    assert by_row[6].column == "female_personnel" and "cannot be negative" in by_row[6].reason
    assert all(error.sheet == "Data" for error in result.errors)
    assert (schema.Actor.select().count(), schema.Mission.select().count()) == (actors, missions)


def test_abort_writes_nothing_when_one_row_is_bad(seeded_db, tmp_path):
    path = workbook(tmp_path / "one_bad.xlsx", HUB, [
        hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 1, 10),
        hub_row("Narnia", "", "UNDOF", "Troops", 1, 10),
        hub_row("Ireland", "IRL", "UNDOF", "Troops", 1, 10),
    ])
    before, stored = change_sets(), contributions()

    _, result = import_file(path, ImportOptions(on_error="abort"))

    assert (result.written, result.inserted, result.rejected) == (False, 0, 1)
    assert [error.row for error in result.errors] == [3]
    assert contributions() == stored and change_sets() == before
    assert result.backup is None  # not even a backup: nothing was about to be written


def test_skip_writes_the_good_rows_and_reports_the_rest(seeded_db, tmp_path):
    path = workbook(tmp_path / "skip.xlsx", HUB, [
        hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 1, 10),
        hub_row("Narnia", "", "UNDOF", "Troops", 1, 10),
        hub_row("Ireland", "IRL", "UNDOF", "Troops", 1, 10),
    ])

    _, result = import_file(path, ImportOptions(on_error="skip"))

    assert (result.written, result.inserted, result.rejected) == (True, 2, 1)
    assert (MAY, "Ireland", "UNDOF", "Troops") in contributions()
    assert "Narnia" in str(result.errors[0])


def test_a_row_repeating_an_earlier_one_names_it(seeded_db, tmp_path):
    path = workbook(tmp_path / "twice.xlsx", HUB, [
        hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 1, 10),
        hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 2, 20),
    ])

    _, result = import_file(path)

    assert result.rejected == 1
    assert result.errors[0].row == 3 and "as row 2" in result.errors[0].reason


def test_upsert_updates_changed_rows_and_insert_mode_refuses_existing_ones(seeded_db, tmp_path):
    first = workbook(tmp_path / "may.xlsx", HUB, [hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 1, 10),
                                                  hub_row("Ireland", "IRL", "UNDOF", "Troops", 2, 20)])
    import_file(first)
    revised = workbook(tmp_path / "may_revised.xlsx", HUB, [hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 5, 10),
                                                            hub_row("Ireland", "IRL", "UNDOF", "Troops", 2, 20),
                                                            hub_row("India", "IND", "UNDOF", "Troops", 0, 7)])

    _, refused = import_file(revised, ImportOptions(mode="insert"))
    assert not refused.written and refused.rejected == 2
    assert "already exists" in refused.errors[0].reason and "--mode upsert" in refused.errors[0].reason

    _, result = import_file(revised, ImportOptions(mode="upsert"))
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    assert contributions()[(MAY, "Kazakhstan", "UNDOF", "Troops")] == (5, 10, 15)
    entry = schema.ChangeLogEntry.get(schema.ChangeLogEntry.change_set == result.change_set_id,
                                      schema.ChangeLogEntry.action == "update")
    assert '"female_count": 1' in entry.old_values and '"female_count": 5' in entry.new_values


def test_dry_run_reports_and_writes_nothing(seeded_db, tmp_path):
    path = workbook(tmp_path / "dry.xlsx", HUB, [hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 1, 10)])
    before, stored = change_sets(), contributions()

    _, result = import_file(path, ImportOptions(dry_run=True))

    assert (result.inserted, result.written, result.dry_run) == (1, False, True)
    assert contributions() == stored and change_sets() == before
    assert "dry run" in result.summary()


def test_importing_the_same_file_again_changes_nothing(seeded_db, tmp_path):
    path = workbook(tmp_path / "again.xlsx", HUB, [hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 1, 10),
                                                   hub_row("Ireland", "IRL", "UNDOF", "Troops", 2, 20)])
    import_file(path)
    sets, entries = change_sets(), schema.ChangeLogEntry.select().count()
    versions = {row.id: row.version for row in schema.Contribution.select()}

    _, again = import_file(path)

    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 2, 0)
    assert (change_sets(), schema.ChangeLogEntry.select().count()) == (sets, entries)
    assert {row.id: row.version for row in schema.Contribution.select()} == versions


def test_an_import_is_undone_in_one_step(seeded_db, tmp_path):
    import_file(workbook(tmp_path / "april.xlsx", HUB, [hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 1, 10)]))
    before = contributions()
    path = workbook(tmp_path / "update_and_add.xlsx", HUB, [
        hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 4, 40),  # an update
        hub_row("Ireland", "IRL", "UNDOF", "Troops", 2, 20),  # and two new rows
        hub_row("India", "IND", "UNIFIL", "Formed Police Units", 20, 120),
    ])
    _, result = import_file(path)
    assert (result.inserted, result.updated) == (2, 1)

    undo = revert_change_set(result.change_set_id)

    assert contributions() == before
    assert schema.ChangeSet.get_by_id(undo).summary.startswith("Undo: Import update_and_add.xlsx")


def big_file(path: Path, rows: int) -> Path:
    import pycountry

    countries = [c.alpha_3 for c in pycountry.countries][:200]
    missions = ["UNDOF", "UNIFIL", "UNMISS", "UNISFA", "MINUSCA", "MONUSCO"]
    types = ["Troops", "Staff Officer", "Experts on Mission", "Individual Police", "Formed Police Units"]
    body = []
    for index in range(rows):
        month, rest = divmod(index, len(countries) * len(missions) * len(types))
        body.append([index, "", countries[rest // (len(missions) * len(types))], "",
                     missions[(rest // len(types)) % len(missions)], types[rest % len(types)], 1, 2,
                     dt.date(2015 + month // 12, month % 12 + 1, 28)])
    return workbook(path, HUB, body)


def test_a_large_import_is_undone_and_redone_in_bulk_with_progress(seeded_db, tmp_path, monkeypatch):
    monkeypatch.setattr(import_writing, "WRITE_CHUNK", 500)  # the rows go in as three chunks
    before, entries = contributions(), schema.ChangeLogEntry.select().count()
    _, result = import_file(big_file(tmp_path / "big.xlsx", 1_500))
    imported = contributions()
    newest = schema.Contribution.select().order_by(schema.Contribution.id.desc()).first().id
    newest_label = record_label(RECORD_TYPES["contributions"], snapshot(schema.Contribution, newest))
    reports: list[tuple[int, int, str]] = []

    undo = revert_change_set(result.change_set_id, progress=Progress(lambda *report: reports.append(report)))

    assert contributions() == before
    assert reports[-1][:2] == (1_500, 1_500)  # the GUI's progress bar reaches the end
    undone = schema.ChangeLogEntry.select().where(schema.ChangeLogEntry.change_set == undo)
    assert undone.count() == 1_500
    # Each removed row is logged under its own label (as a redo that meets a conflict names it).
    assert {entry.record_label for entry in undone if entry.record_id == newest} == {newest_label}
    redo = revert_change_set(undo)
    assert contributions() == imported
    assert schema.ChangeSet.get_by_id(redo).summary.startswith("Import big.xlsx")
    # The import's new rows, written in three chunks, are one range entry; its undo and redo log each row with
    # its values.
    assert schema.ChangeLogEntry.select().count() == entries + 1 + 2 * 1_500


def test_undoing_an_import_is_refused_when_one_of_its_rows_changed_since(seeded_db, tmp_path):
    _, result = import_file(big_file(tmp_path / "big.xlsx", 1_200))
    changed = schema.Contribution.select().order_by(schema.Contribution.id.desc()).first()
    update_record("contributions", changed.id, {"female_count": 7, "total_count": 9})
    imported = contributions()
    sets = change_sets()

    label = record_label(RECORD_TYPES["contributions"], snapshot(schema.Contribution, changed.id))
    with pytest.raises(StaleRecord, match="has been changed since") as refusal:
        revert_change_set(result.change_set_id)
    assert f"'{label}'" in str(refusal.value)  # the row, by what people call it

    assert contributions() == imported and change_sets() == sets  # not one row deleted, nothing logged


def test_cancel_during_the_write_leaves_the_database_as_it_was(seeded_db, tmp_path):
    path = big_file(tmp_path / "big.xlsx", 12_000)
    with ImportSource(path) as source:
        plan = stage_import(source, ImportOptions())
    before, sets = schema.Contribution.select().count(), change_sets()
    written: list[int] = []

    def cancel_after_first_chunk(done: int, total: int, message: str) -> None:
        written.append(done)
        if message.startswith("Writing") and done >= 5_000:
            progress.cancel()

    progress = Progress(cancel_after_first_chunk)
    with pytest.raises(Cancelled):
        apply_plan(plan, progress)

    assert written and 0 < written[-1] < 12_000  # it had written part of the rows inside its transaction
    assert (schema.Contribution.select().count(), change_sets()) == (before, sets)


def test_cancel_from_another_thread_rolls_the_import_back(seeded_db, tmp_path):
    path = big_file(tmp_path / "big.xlsx", 12_000)
    with ImportSource(path) as source:
        plan = stage_import(source, ImportOptions())
    before = schema.Contribution.select().count()
    first_chunk_written, cancelled = threading.Event(), threading.Event()
    outcome: list[BaseException] = []

    def report(done: int, total: int, message: str) -> None:
        if message.startswith("Writing"):
            first_chunk_written.set()
            cancelled.wait(10)  # hold the worker until the user has pressed Cancel

    progress = Progress(report)

    def work() -> None:
        try:
            apply_plan(plan, progress)
        except BaseException as exc:  # the worker's outcome, checked by the test thread
            outcome.append(exc)
        finally:
            schema.database.close()

    worker = threading.Thread(target=work)
    worker.start()
    assert first_chunk_written.wait(30)
    progress.cancel()
    cancelled.set()
    worker.join(30)

    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)
    assert schema.Contribution.select().count() == before


def test_the_error_report_can_be_fixed_and_imported_again(seeded_db, tmp_path):
    path = workbook(tmp_path / "to_fix.xlsx", HUB, [
        hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 1, 10),
        hub_row("Narnia", "", "UNDOF", "Troops", 1, 10),
        hub_row("Ireland", "IRL", "UNDOF", "Troop", 2, 20),
    ], titles=["A title the report need not keep"])
    with ImportSource(path) as source:
        plan = stage_import(source, ImportOptions(on_error="skip"))
    result = apply_plan(plan)
    assert (result.inserted, result.rejected) == (1, 2)

    report = write_error_report(plan, tmp_path / "report.xlsx")

    book = openpyxl.load_workbook(report)
    sheet = book["Data"]
    header = [cell.value for cell in sheet[1]]
    assert header == [*HUB, "PaxDesk import errors"]
    narnia, troop = sheet[2], sheet[3]
    assert narnia[1].value == "Narnia" and narnia[1].fill.fgColor.rgb.endswith("FFC7CE")
    assert "No actor called 'Narnia'" in narnia[1].comment.text
    assert troop[5].value == "Troop" and "closest: Troops" in troop[5].comment.text
    assert narnia[8].value.date() == MAY  # dates stay dates
    assert "contributing_country" in narnia[9].value
    assert narnia[2].fill.fgColor.rgb != narnia[1].fill.fgColor.rgb  # only the bad cell is marked

    narnia[1].value = "Kazakhstan"
    narnia[4].value = "UNIFIL"
    troop[5].value = "Troops"
    book.save(report)
    _, fixed = import_file(report)

    assert (fixed.inserted, fixed.rejected) == (2, 0), fixed.errors
    stored = contributions()
    assert stored[(MAY, "Kazakhstan", "UNIFIL", "Troops")] == (1, 10, 11)
    assert stored[(MAY, "Ireland", "UNDOF", "Troops")] == (2, 20, 22)


def test_text_that_looks_like_a_formula_stays_text_in_the_report(seeded_db, tmp_path):
    path = workbook(tmp_path / "formula_text.xlsx", HUB,
                    [hub_row("=cmd|' /C calc'!A0", "", "UNDOF", "Troops", 1, 1)])
    with ImportSource(path) as source:
        plan = stage_import(source, ImportOptions())

    report = write_error_report(plan, tmp_path / "report.xlsx")

    cell = openpyxl.load_workbook(report)["Data"]["B2"]
    assert cell.value == "=cmd|' /C calc'!A0" and cell.data_type == "s"


def test_a_row_saved_by_someone_else_between_check_and_write_rolls_the_import_back(seeded_db, tmp_path):
    from models.services import save_record

    path = workbook(tmp_path / "race.xlsx", HUB, [hub_row("Kazakhstan", "KAZ", "UNDOF", "Troops", 1, 10),
                                                  hub_row("Ireland", "IRL", "UNDOF", "Troops", 2, 20)])
    with ImportSource(path) as source:
        plan = stage_import(source, ImportOptions())
    # Meanwhile a colleague enters Ireland's figure by hand.
    save_record("contributions", {"reporting_date": MAY, "contributor": actor_id("Ireland"),
                                  "mission": schema.Mission.get(schema.Mission.acronym == "UNDOF").id,
                                  "personnel_type": "Troops", "female_count": 2, "male_count": 20})
    stored, sets = contributions(), change_sets()

    result = apply_plan(plan)

    assert not result.written and result.inserted == 0
    assert "the database changed since the rows were checked" in result.failure.reason
    assert contributions() == stored and change_sets() == sets
