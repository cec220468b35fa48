"""After seeding, the database holds the founding case as the article tells it, each fact cited."""

import datetime as dt

from models import schema
from models.reconcile import match_actor, match_record
from models.records import RECORD_TYPES
from models.seeding import seed_database
from models.services import linked_rows

ARTICLE = "Kazakhstan seeks larger role in international peacebuilding"


def actor_name(actor_id):
    return schema.Actor.get_by_id(actor_id).name


def participants(event):
    return {(actor_name(row["actor"]), row["role"]) for row in linked_rows("mediation-events", event.id,
                                                                             "participants")}


def test_almaty_talks_of_may_2024(seeded_db):
    event = schema.MediationEvent.get(schema.MediationEvent.title == "Armenia–Azerbaijan talks in Almaty")
    assert (event.start_date, event.end_date, event.venue_city) == ("2024-05-10", "2024-05-11", "Almaty")
    assert event.venue_country.name == "Kazakhstan"
    assert participants(event) == {("Armenia", "party"), ("Azerbaijan", "party"), ("Kazakhstan", "host")}
    assert "continue negotiations on open issues" in event.outcome
    assert event.agreement.status == "draft"
    assert event.agreement.title.startswith("Agreement on the Establishment of Peace and Interstate Relations")


def test_two_2013_almaty_rounds_on_irans_nuclear_programme(seeded_db):
    process = schema.PeaceProcess.get(schema.PeaceProcess.name == "Iran nuclear negotiations")
    rounds = list(process.events.order_by(schema.MediationEvent.start_date))
    assert [(e.start_date, e.venue_city) for e in rounds] == [("2013-02", "Almaty"), ("2013-04", "Almaty")]
    for event in rounds:
        assert ("Iran", "party") in participants(event) and ("Kazakhstan", "host") in participants(event)


def test_astana_process_with_iran_turkiye_and_russia(seeded_db):
    process = schema.PeaceProcess.get(schema.PeaceProcess.name == "Astana process")
    assert (process.start_date, process.end_date) == ("2017~", "2023~")
    guarantors = set()
    for event in process.events:
        guarantors |= {name for name, role in participants(event) if role == "guarantor"}
    assert guarantors == {"Iran", "Türkiye", "Russian Federation"}
    ended = process.events.where(schema.MediationEvent.start_date == "2023-06").get()
    assert ended.outcome_category == "process_ended"


def test_kazcon_in_undof_arrives_and_takes_over_from_the_irish(seeded_db):
    kazcon = schema.Contingent.get(schema.Contingent.name == "KAZCON")
    assert (kazcon.contributor.iso3, kazcon.mission.acronym, kazcon.base) == ("KAZ", "UNDOF", "Camp Faouar")
    milestones = {m.kind: m for m in kazcon.milestones}
    assert (milestones["arrived"].date, milestones["arrived"].place) == ("2024-03-15", "Damascus")
    handover = milestones["transfer_of_authority"]
    assert handover.date == "2024-03-22" and handover.place == "Camp Faouar"
    assert handover.counterpart.name == "Irish Contingent" and handover.counterpart.contributor.iso3 == "IRL"


def test_authorisation_of_up_to_430_for_four_missions(seeded_db):
    authorisation = schema.Authorisation.get(schema.Authorisation.date == "2024-01-19")
    assert authorisation.country.name == "Kazakhstan" and authorisation.ceiling == 430
    assert "both houses" in authorisation.body
    assert {row.mission.acronym for row in authorisation.covered_missions} == {"UNDOF", "UNTSO", "UNMISS", "UNISFA"}


def test_31_may_2024_figures_without_inventing_missions(seeded_db):
    rows = list(schema.Contribution.select().where(schema.Contribution.reporting_date == dt.date(2024, 5, 31)))
    named = {(r.mission.acronym, r.personnel_type): r.total_count for r in rows if r.mission_id}
    assert named == {("UNDOF", "Troops"): 139, ("UNIFIL", "Troops"): 6}
    unnamed = sorted((r.personnel_type, r.total_count) for r in rows if r.mission_id is None)
    assert unnamed == [("Experts on Mission", 2), ("Staff Officer", 1), ("Staff Officer", 2)]
    assert all(r.mission_note for r in rows if r.mission_id is None)
    assert all(r.female_count is None and r.male_count is None for r in rows)  # the article gives no split
    assert sum(r.total_count for r in rows) == 150


def test_abyei_incident_around_40_killed(seeded_db):
    incident = schema.Incident.get(schema.Incident.location == "Abyei")
    assert incident.date == "2024-02" and incident.mission.acronym == "UNISFA"
    assert (incident.killed_count, incident.killed_qualifier) == (40, "approximate")


def test_every_founding_record_cites_the_article_with_a_short_quote(seeded_db):
    article = schema.Source.get(schema.Source.title == ARTICLE)
    assert article.publication_date == "2024-08-01" and article.author == "Wilder Alejandro Sánchez"
    founding_keys = ["mediation-events", "peace-processes", "agreements", "contingents", "authorisations",
                     "contributions", "incidents"]
    for key in founding_keys:
        model = RECORD_TYPES[key].model
        for record_id, in model.select(model.id).tuples():
            cited = schema.Citation.select().where(schema.Citation.record_type == key,
                                                   schema.Citation.record_id == record_id,
                                                   schema.Citation.source == article)
            assert cited.exists(), f"{key} #{record_id} cites nothing"
            assert all(0 < len(c.quote) <= 160 and c.locator for c in cited)


def test_reference_data_states_missions_and_aliases(seeded_db):
    assert schema.Actor.select().where(schema.Actor.kind == "state").count() == 249  # all of ISO 3166-1
    assert schema.Actor.get(schema.Actor.iso3 == "KAZ").m49 == 398
    for alias in ("Türkiye", "Turkiye", "Turkey", "TURKEY"):
        assert actor_name(match_actor(alias)) == "Türkiye"
    assert actor_name(match_actor("Iran (Islamic Republic of)")) == "Iran"
    assert actor_name(match_actor("Syrian Arab Republic")) == "Syria"
    assert actor_name(match_actor("Қазақстан")) == "Kazakhstan"
    assert actor_name(match_actor("Հայաստան")) == "Armenia"
    assert actor_name(match_actor("Azərbaycan")) == "Azerbaijan"
    undof = schema.Mission.get(schema.Mission.acronym == "UNDOF")
    assert undof.headquarters == "Camp Faouar" and undof.kind == "peacekeeping_operation"
    assert match_record("missions", " undof ") == undof.id


def table_contents():
    return {
        table.__name__: [tuple(row) for row in table.select().order_by(*table._meta.get_primary_keys()).tuples()]
        for table in schema.ALL_TABLES
    }


def test_seeding_twice_changes_nothing(seeded_db):
    before = table_contents()
    assert seed_database().total == 0
    after = table_contents()
    assert after == before
