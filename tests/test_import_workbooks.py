"""Importing PaxDesk data workbooks (round trips through the exporter and through the shared format module) and
sheets of any layout through a column mapping that is remembered by header signature."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from models import schema
from models.db import open_database
from models.export_data import export_data
from models.importing import (
    ColumnMapping,
    ImportOptions,
    ImportRefused,
    ImportSource,
    apply_plan,
    import_file,
    mapping_key,
    stage_import,
)
from models.records import RECORD_TYPES
from models.services import delete_record, linked_rows, revert_change_set, save_record
from models.workbook_format import (
    FORMAT_ITEM,
    FORMAT_NAME,
    FORMAT_VERSION,
    FORMAT_VERSION_ITEM,
    METADATA_HEADERS,
    METADATA_SHEET,
    excel_value,
    link_layout,
    record_layout,
)

BOOKKEEPING = ("created_at", "updated_at")


def every_row() -> dict[str, list[tuple]]:
    """Every stored row of every table, ids included, timestamps left out."""
    return {model._meta.table_name: sorted(
        tuple(sorted((k, str(v)) for k, v in row.items() if k not in BOOKKEEPING)) for row in model.select().dicts())
        for model in schema.RECORD_TABLES}


def add_records_with_links() -> None:
    """Records whose links reach across types: a milestone naming the contingent it took over from, a group's
    members, an event's participants and citations."""
    kazakhstan = schema.Actor.get(schema.Actor.iso3 == "KAZ").id
    ireland = schema.Actor.get(schema.Actor.iso3 == "IRL").id
    undof = schema.Mission.get(schema.Mission.acronym == "UNDOF").id
    source = schema.Source.select().first().id
    irish = save_record("contingents", {"name": "IRISHCON", "contributor": ireland, "mission": undof,
                                        "base": "Camp Faouar", "arrival_date": "2013"})
    save_record("contingents", {"name": "KAZCON 2", "contributor": kazakhstan, "mission": undof,
                                "arrival_date": "2024-03"},
                links={"milestones": [{"kind": "transfer_of_authority", "date": "2024-03-22", "counterpart": irish,
                                       "place": "Camp Faouar"}],
                       "citations": [{"source": source, "locator": "para. 12", "quote": "took over"}]})
    save_record("actors", {"name": "Central Asian mediators", "kind": "group_of_states"},
                links={"members": [{"member": kazakhstan}], "aliases": [{"alias": "CAM group"}]})
    save_record("mediation-events", {"title": "Almaty round on Lake Issyk-Kul", "start_date": "2024-05~",
                                     "venue_city": "Almaty", "venue_country": kazakhstan, "format": "round"},
                links={"participants": [{"actor": kazakhstan, "role": "host"}, {"actor": ireland, "role": "observer"}]})


def test_an_exported_data_workbook_reproduces_the_database_exactly(seeded_db, tmp_path):
    add_records_with_links()
    withdrawn = save_record("sources", {"title": "Withdrawn"})
    save_record("sources", {"title": "After the gap"})
    delete_record("sources", withdrawn)  # a gap in the ids
    original = every_row()
    export_data(tmp_path / "everything.xlsx")
    open_database(tmp_path / "empty.sqlite3")

    _, result = import_file(tmp_path / "everything.xlsx")

    assert result.written and not result.errors
    assert result.format == "paxdesk"
    assert every_row() == original
    # The import is undone as one step, and redone, ids and all. The sources' ids around the gap are two
    # ranges in the change log.
    entry = schema.ChangeLogEntry
    assert entry.select().where(entry.change_set == result.change_set_id, entry.table_name == "source").count() == 2
    undo = revert_change_set(result.change_set_id)
    assert not any(every_row().values())
    revert_change_set(undo)
    assert every_row() == original
    # The ids were kept, and a record created afterwards takes the next one.
    highest = max(row[0] for row in schema.Source.select(schema.Source.id).tuples())
    assert save_record("sources", {"title": "A later source"}) == highest + 1
    schema.database.close()


def test_the_export_imported_again_into_its_own_database_changes_nothing(seeded_db, tmp_path):
    export_data(tmp_path / "again.xlsx")
    sets = schema.ChangeSet.select().count()

    _, result = import_file(tmp_path / "again.xlsx")

    assert (result.inserted, result.updated, result.deleted, result.rejected) == (0, 0, 0, 0)
    assert result.unchanged > 800
    assert schema.ChangeSet.select().count() == sets


def test_edits_made_in_excel_come_back_as_updates_and_removals(seeded_db, tmp_path):
    add_records_with_links()
    export_data(tmp_path / "edited.xlsx")
    book = openpyxl.load_workbook(tmp_path / "edited.xlsx")
    events = book["Mediation events"]
    header = [cell.value for cell in events[1]]
    for row in events.iter_rows(min_row=2):
        if row[header.index("title")].value == "Almaty round on Lake Issyk-Kul":
            row[header.index("title")].value = "Almaty round"  # a rename: the id says which event it is
            event_id = row[0].value
    participants = book["Mediation events – participants"]
    columns = [cell.value for cell in participants[1]]
    for index, row in enumerate(participants.iter_rows(min_row=2), start=2):
        if row[columns.index("event_id")].value == event_id and row[columns.index("role")].value == "observer":
            participants.delete_rows(index)
            break
    book.save(tmp_path / "edited.xlsx")

    _, result = import_file(tmp_path / "edited.xlsx")

    assert (result.updated, result.deleted, result.inserted, result.rejected) == (1, 1, 0, 0), result.errors
    assert schema.MediationEvent.get_by_id(event_id).title == "Almaty round"
    assert [row["role"] for row in linked_rows("mediation-events", event_id, "participants")] == ["host"]


def write_workbook(path: Path, sheets: dict[str, list[list]], metadata: bool = True) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    if metadata:
        sheet = book.create_sheet(METADATA_SHEET)
        for row in [list(METADATA_HEADERS), [FORMAT_ITEM, FORMAT_NAME], [FORMAT_VERSION_ITEM, FORMAT_VERSION]]:
            sheet.append(row)
    book.save(path)
    return path


def layout_row(layout, values: dict) -> list:
    """A row of a sheet laid out by the format module, values written as the module says."""
    return [excel_value(column.field, values.get(column.header)) if column.field is not None and
            column.role in ("value", "ref_id") else values.get(column.header) for column in layout.columns]


def test_a_workbook_built_from_the_format_module_goes_into_an_empty_database_with_its_ids(db, tmp_path):
    actors = record_layout(RECORD_TYPES["actors"])
    aliases = link_layout(RECORD_TYPES["actors"], RECORD_TYPES["actors"].link("aliases"))
    processes = record_layout(RECORD_TYPES["peace-processes"])
    events = record_layout(RECORD_TYPES["mediation-events"])
    participants = link_layout(RECORD_TYPES["mediation-events"], RECORD_TYPES["mediation-events"].link("participants"))
    path = write_workbook(tmp_path / "by_hand.xlsx", {
        actors.name: [list(actors.headers),
                      layout_row(actors, {"id": 501, "name": "Kazakhstan", "kind": "state", "iso3": "KAZ",
                                          "m49": 398}),
                      layout_row(actors, {"id": 502, "name": "Armenia", "kind": "state", "iso3": "ARM", "m49": 51})],
        aliases.name: [list(aliases.headers),
                       layout_row(aliases, {"id": 70, "actor_id": 501, "actor": "Kazakhstan", "alias": "Qazaqstan"})],
        processes.name: [list(processes.headers),
                         layout_row(processes, {"id": 9, "name": "Armenia–Azerbaijan peace negotiations",
                                                "start_date": "2020~"})],
        events.name: [list(events.headers),
                      # the process by id; the venue country by its name alone
                      layout_row(events, {"id": 40, "title": "Almaty talks", "process_id": 9, "start_date": "2024-05",
                                          "venue_country": "Kazakhstan", "format": "round"})],
        participants.name: [list(participants.headers),
                            layout_row(participants, {"id": 300, "event_id": 40, "actor_id": 501, "role": "host"}),
                            layout_row(participants, {"id": 301, "event_id": 40, "actor_id": 502, "role": "party"})],
    })

    _, result = import_file(path)

    assert result.written and result.inserted == 7, result.errors
    event = schema.MediationEvent.get_by_id(40)
    assert (event.process_id, event.venue_country_id, event.start_date) == (9, 501, "2024-05")
    assert {(p.id, p.actor_id, p.role) for p in schema.Participation.select()} == {(300, 501, "host"),
                                                                                     (301, 502, "party")}
    alias = schema.ActorAlias.get_by_id(70)
    assert (alias.actor_id, alias.alias, alias.alias_key) == (501, "Qazaqstan", "qazaqstan")


def test_new_ids_are_drawn_when_writing_so_a_save_in_between_keeps_its_own(db, tmp_path):
    actors = record_layout(RECORD_TYPES["actors"])
    events = record_layout(RECORD_TYPES["mediation-events"])
    participants = link_layout(RECORD_TYPES["mediation-events"], RECORD_TYPES["mediation-events"].link("participants"))
    path = write_workbook(tmp_path / "no_ids.xlsx", {
        # no ids at all: the rows refer to each other by name, the participants to their event by id
        actors.name: [list(actors.headers),
                      layout_row(actors, {"name": "Kazakhstan", "kind": "state", "iso3": "KAZ", "m49": 398})],
        events.name: [list(events.headers),
                      layout_row(events, {"id": 40, "title": "Almaty talks", "start_date": "2024-05",
                                          "venue_country": "Kazakhstan", "format": "round"})],
        participants.name: [list(participants.headers),
                            layout_row(participants, {"event_id": 40, "actor": "Kazakhstan", "role": "host"})],
    })
    with ImportSource(path) as source:
        plan = stage_import(source, ImportOptions())
    planned = plan.sheets[0].rows[0].record_id
    # A colleague saves between the preview and the write, and takes the id the plan had in mind.
    colleague = save_record("actors", {"name": "Armenia", "kind": "state", "iso3": "ARM", "m49": 51})
    assert colleague == planned

    result = apply_plan(plan)

    assert result.written and result.inserted == 3, result.errors
    assert schema.Actor.get_by_id(colleague).name == "Armenia"
    kazakhstan = schema.Actor.get(schema.Actor.name == "Kazakhstan").id
    assert kazakhstan != colleague
    assert schema.MediationEvent.get_by_id(40).venue_country_id == kazakhstan  # the references followed
    assert [(p.event_id, p.actor_id) for p in schema.Participation.select()] == [(40, kazakhstan)]


def test_a_row_refering_to_a_rejected_row_is_rejected_with_it(db, tmp_path):
    processes = record_layout(RECORD_TYPES["peace-processes"])
    events = record_layout(RECORD_TYPES["mediation-events"])
    path = write_workbook(tmp_path / "chain.xlsx", {
        processes.name: [list(processes.headers),
                         layout_row(processes, {"id": 1, "name": "Good process"}),
                         layout_row(processes, {"id": 2, "name": "Bad process", "start_date": "2020",
                                                "end_date": "2019"})],
        events.name: [list(events.headers),
                      layout_row(events, {"id": 5, "title": "Fine", "process_id": 1, "start_date": "2021"}),
                      layout_row(events, {"id": 6, "title": "Orphan", "process_id": 2, "start_date": "2021"})],
    })

    _, result = import_file(path, ImportOptions(on_error="skip"))

    assert (result.inserted, result.rejected) == (2, 2)
    reasons = {(error.sheet, error.row): error.reason for error in result.errors}
    assert "before start date" in reasons[("Peace processes", 3)]
    assert "was rejected (sheet 'Peace processes', row 3)" in reasons[("Mediation events", 3)]
    assert [e.title for e in schema.MediationEvent.select()] == ["Fine"]


def talks(path: Path, headers: list[str], rows: list[list]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Talks"
    sheet.append(["Rounds hosted by Kazakhstan (compiled by hand)"])
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_a_sheet_of_any_layout_imports_through_a_mapping_that_is_offered_again(seeded_db, tmp_path):
    headers = ["Round", "Began", "Host city", "Process", "Remarks"]
    first = talks(tmp_path / "talks.xlsx", headers, [
        ["Astana XXI", "2023-06", "Astana", "Astana process", "last one"],
        ["Astana XX", "2023-06~", "Astana", "astana PROCESS", ""],
    ])
    with ImportSource(first) as source:
        assert source.describe("Talks").kind == "unknown"
    mapping = ColumnMapping("mediation-events", {"Round": "title", "Began": "start_date", "Host city": "venue_city",
                                                 "Process": "process", "Remarks": ""})

    _, result = import_file(first, ImportOptions(sheet="Talks", mapping=mapping))

    assert (result.inserted, result.format) == (2, "mapped"), result.errors
    astana = schema.PeaceProcess.get(schema.PeaceProcess.name == "Astana process").id
    assert {e.process_id for e in schema.MediationEvent.select().where(
        schema.MediationEvent.title.startswith("Astana X"))} == {astana}
    saved = schema.Setting.get(schema.Setting.key == mapping_key(headers))
    assert ColumnMapping.from_json(saved.value) == mapping

    # Next month's sheet: the same headers, in another order and case, under a different title.
    later = talks(tmp_path / "talks_later.xlsx", ["REMARKS", "process", "round", "host city", "began"], [
        ["", "Astana process", "Astana XXII", "Astana", "2023-07"],
    ])
    with ImportSource(later) as source:
        info = source.describe("Talks")
        assert (info.kind, info.mapping) == ("mapped", mapping)
    _, again = import_file(later)  # no mapping given: the saved one is used
    assert (again.inserted, again.format) == (1, "mapped"), again.errors
    event = schema.MediationEvent.get(schema.MediationEvent.title == "Astana XXII")
    assert (event.start_date, event.venue_city) == ("2023-07", "Astana")


def test_a_mapping_without_the_required_fields_is_refused(seeded_db, tmp_path):
    path = talks(tmp_path / "talks.xlsx", ["Round", "Host city"], [["Astana XXI", "Astana"]])
    mapping = ColumnMapping("mediation-events", {"Round": "title", "Host city": "venue_city"})

    with pytest.raises(ImportRefused, match="leaves out required fields of mediation events: Start date"):
        import_file(path, ImportOptions(sheet="Talks", mapping=mapping))


def test_mapped_rows_are_validated_like_a_form(seeded_db, tmp_path):
    path = talks(tmp_path / "talks.xlsx", ["Round", "Began", "Ended", "Country"], [
        ["Ok", "2023-06", "2023-07", "Kazakhstan"],
        ["Backwards", "2023-06", "2023-05", "Kazakhstan"],
        ["Nowhere", "2023-06", "", "Atlantis"],
        ["Bad date", dt.date(2023, 6, 1), "June", "KAZ"],
    ])
    mapping = ColumnMapping("mediation-events", {"Round": "title", "Began": "start_date", "Ended": "end_date",
                                                 "Country": "venue_country"})

    _, result = import_file(path, ImportOptions(sheet="Talks", mapping=mapping))

    assert (result.written, result.rejected) == (False, 3)
    reasons = {error.row: (error.column, error.reason) for error in result.errors}
    assert reasons[4] == ("Ended", "End date 2023-05 is before start date 2023-06")
    assert reasons[5][0] == "Country" and "No actor called 'Atlantis'" in reasons[5][1]
    assert reasons[6][0] == "Ended" and "'June' is not a date PaxDesk understands" in reasons[6][1]
