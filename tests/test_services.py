"""Writes through the services: change log, references, natural keys, versions, links and revert."""

import json

import pytest
from peewee import IntegrityError

from models import schema
from models.services import (
    RecordRefused,
    StaleRecord,
    StillReferenced,
    create_record,
    delete_record,
    linked_rows,
    revert_change_set,
    update_record,
)
from tests.conftest import latest_change_set


@pytest.fixture
def basics(db):
    kazakhstan = create_record("actors", {"name": "Kazakhstan", "kind": "state", "iso3": "KAZ", "m49": 398})
    armenia = create_record("actors", {"name": "Armenia", "kind": "state", "iso3": "ARM", "m49": 51})
    undof = create_record("missions", {"acronym": "UNDOF", "name": "UN Disengagement Observer Force",
                                       "kind": "peacekeeping_operation"})
    return {"kazakhstan": kazakhstan, "armenia": armenia, "undof": undof}


def entries_of(change_set):
    return list(change_set.entries.order_by(schema.ChangeLogEntry.id))


def test_insert_is_logged_with_who_and_new_values(basics):
    change_set = latest_change_set()
    assert change_set.user == "tester" and change_set.kind == "edit"
    assert change_set.summary == "New mission 'UNDOF'"
    [entry] = entries_of(change_set)
    assert (entry.table_name, entry.record_id, entry.action) == ("mission", basics["undof"], "insert")
    assert entry.old_values is None and json.loads(entry.new_values)["acronym"] == "UNDOF"


def test_update_is_logged_with_old_and_new_values(basics):
    update_record("missions", basics["undof"], {"headquarters": "Camp Faouar"})
    [entry] = entries_of(latest_change_set())
    assert entry.action == "update"
    assert json.loads(entry.old_values)["headquarters"] == ""
    assert json.loads(entry.new_values)["headquarters"] == "Camp Faouar"
    assert json.loads(entry.new_values)["version"] == 2


def test_unchanged_save_writes_no_entry(basics):
    before = latest_change_set().id
    update_record("missions", basics["undof"], {"headquarters": ""})
    assert latest_change_set().id == before  # no empty entry in the log
    assert schema.Mission.get_by_id(basics["undof"]).version == 1


def test_delete_is_logged_with_old_values_and_removes_owned_rows(basics):
    event = create_record("mediation-events", {"title": "Talks", "start_date": "2024-05-10"},
                          links={"participants": [{"actor": basics["armenia"], "role": "party"}]})
    delete_record("mediation-events", event)
    entries = entries_of(latest_change_set())
    assert [(e.table_name, e.action) for e in entries] == [("participation", "delete"),
                                                           ("mediation_event", "delete")]
    assert json.loads(entries[1].old_values)["title"] == "Talks"
    assert not schema.Participation.select().exists()


def test_deleting_a_referenced_record_is_refused_naming_the_referrers(basics):
    create_record("contributions", {"reporting_date": "2024-05-31", "contributor": basics["kazakhstan"],
                                    "mission": basics["undof"], "personnel_type": "Troops", "total_count": 139})
    create_record("mediation-events", {"title": "Almaty talks", "start_date": "2024-05-10"},
                  links={"participants": [{"actor": basics["kazakhstan"], "role": "host"}]})
    with pytest.raises(StillReferenced) as refused:
        delete_record("actors", basics["kazakhstan"])
    message = str(refused.value)
    assert "Cannot delete actor 'Kazakhstan'" in message
    assert "1 contribution: 2024-05-31 · Kazakhstan · UNDOF · Troops" in message
    assert "1 mediation event (as participants): Almaty talks" in message
    assert schema.Actor.get_by_id(basics["kazakhstan"]).name == "Kazakhstan"


def test_deleting_a_cited_source_names_the_citing_records_of_every_type(basics):
    source = create_record("sources", {"title": "Kazakhstan seeks larger role"})
    citation = {"source": source, "locator": "para. 15", "quote": ""}
    create_record("mediation-events", {"title": "Almaty talks", "start_date": "2024-05-10"},
                  links={"citations": [citation]})
    update_record("missions", basics["undof"], {}, links={"citations": [citation]})
    with pytest.raises(StillReferenced) as refused:
        delete_record("sources", source)
    message = str(refused.value)
    assert "still used by 2 citations:" in message
    assert "Almaty talks (mediation event)" in message and "UNDOF (mission)" in message
    assert schema.Source.select().where(schema.Source.id == source).exists()


def test_natural_key_duplicate_is_refused_by_service_and_database(basics):
    with pytest.raises(RecordRefused, match="A mission 'UNDOF' already exists"):
        create_record("missions", {"acronym": "undof", "name": "Again", "kind": "observer_mission"})
    with pytest.raises(IntegrityError):  # the last line of defence, should validation be bypassed
        schema.Mission.insert(acronym="UNDOF", name="x", kind="observer_mission").execute()


def test_contribution_natural_key_with_and_without_named_mission(basics):
    base = {"reporting_date": "2024-05-31", "contributor": basics["kazakhstan"], "personnel_type": "Staff Officer",
            "total_count": 1}
    create_record("contributions", {**base, "mission_note": "Mission not named (one staff officer)"})
    create_record("contributions", {**base, "mission_note": "Two other missions", "total_count": 2})
    with pytest.raises(RecordRefused, match="already exists"):
        create_record("contributions", {**base, "mission_note": "Two other missions", "total_count": 2})
    with pytest.raises(IntegrityError):
        schema.Contribution.insert(reporting_date="2024-05-31", contributor=basics["kazakhstan"],
                                   personnel_type="Staff Officer", total_count=5,
                                   mission_note="Two other missions").execute()


def test_check_constraints_guard_counts_and_date_order(basics):
    with pytest.raises(IntegrityError):
        schema.Contribution.insert(reporting_date="2024-05-31", contributor=basics["kazakhstan"],
                                   mission=basics["undof"], personnel_type="Troops", female_count=-1,
                                   total_count=1).execute()
    with pytest.raises(IntegrityError):
        schema.MediationEvent.insert(title="x", start_date="2013-02", end_date="2013-01").execute()


def test_stale_version_is_refused_naming_who_changed_it(basics, monkeypatch):
    monkeypatch.setenv("PAXDESK_USER", "aigerim")
    update_record("missions", basics["undof"], {"headquarters": "Camp Faouar"}, expected_version=1)
    monkeypatch.setenv("PAXDESK_USER", "tester")
    with pytest.raises(StaleRecord, match="was changed by aigerim"):
        update_record("missions", basics["undof"], {"headquarters": "Damascus"}, expected_version=1)
    assert schema.Mission.get_by_id(basics["undof"]).headquarters == "Camp Faouar"
    with pytest.raises(StaleRecord):
        delete_record("missions", basics["undof"], expected_version=1)


def test_links_are_replaced_and_read_back(basics):
    event = create_record("mediation-events", {"title": "Talks", "start_date": "2024-05-10"},
                          links={"participants": [{"actor": basics["armenia"], "role": "party"}]})
    update_record("mediation-events", event, {}, links={"participants": [
        {"actor": basics["armenia"], "role": "party"}, {"actor": basics["kazakhstan"], "role": "host"}]})
    assert linked_rows("mediation-events", event, "participants") == [
        {"actor": basics["armenia"], "role": "party"}, {"actor": basics["kazakhstan"], "role": "host"}]
    actions = [(e.table_name, e.action) for e in entries_of(latest_change_set())]
    assert actions == [("participation", "insert")]  # the unchanged participant was left alone


def test_invalid_link_row_refuses_the_whole_save(basics):
    with pytest.raises(RecordRefused, match="Role 'spectator' is not one of"):
        create_record("mediation-events", {"title": "Talks", "start_date": "2024-05-10"},
                      links={"participants": [{"actor": basics["armenia"], "role": "spectator"}]})
    assert not schema.MediationEvent.select().exists()


def test_unknown_reference_is_refused(basics):
    with pytest.raises(RecordRefused, match="Contributing country: no actor #999"):
        create_record("contributions", {"reporting_date": "2024-05-31", "contributor": 999,
                                        "mission": basics["undof"], "personnel_type": "Troops", "total_count": 1})


def test_revert_undoes_and_redoes_an_edit_and_a_delete(basics):
    update_record("missions", basics["undof"], {"headquarters": "Camp Faouar"})
    undo = revert_change_set(latest_change_set().id)
    assert schema.Mission.get_by_id(basics["undof"]).headquarters == ""
    assert latest_change_set().summary == "Undo: Edit mission 'UNDOF'"
    revert_change_set(undo)
    assert schema.Mission.get_by_id(basics["undof"]).headquarters == "Camp Faouar"
    delete_record("actors", basics["armenia"])
    revert_change_set(latest_change_set().id)
    assert schema.Actor.get_by_id(basics["armenia"]).name == "Armenia"


def test_revert_is_refused_when_the_record_changed_since(basics):
    update_record("missions", basics["undof"], {"headquarters": "Camp Faouar"})
    edit = latest_change_set().id
    update_record("missions", basics["undof"], {"headquarters": "Damascus"})
    with pytest.raises(StaleRecord, match="has been changed since"):
        revert_change_set(edit)
    assert schema.Mission.get_by_id(basics["undof"]).headquarters == "Damascus"


def test_duplicate_message_reads_naturally(basics):
    with pytest.raises(RecordRefused, match="An actor 'kazakhstan' already exists"):
        create_record("actors", {"name": "kazakhstan", "kind": "state"})
