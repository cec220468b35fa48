"""Every validation rule, once failing with a curator's message and once passing."""

import datetime as dt

import pytest

from models.records import record_type
from models.validation import validate_link_row, validate_record

EVENT = {"title": "Almaty talks", "start_date": "2024-05-10", "end_date": "2024-05-11"}
CONTRIBUTION = {"reporting_date": "2024-05-31", "contributor": 1, "mission": 1, "personnel_type": "Troops",
                "female_count": 3, "male_count": 136}
STATE = {"name": "Kazakhstan", "kind": "state", "iso3": "KAZ", "m49": 398}
MISSION = {"acronym": "UNDOF", "name": "UN Disengagement Observer Force", "kind": "peacekeeping_operation"}
INCIDENT = {"title": "Attack", "date": "2024-02", "killed_count": 40, "killed_qualifier": "approximate"}
SOURCE = {"title": "Article", "url": "https://example.org/a", "accessed_date": "2024-08-02"}
AGREEMENT = {"title": "Draft peace agreement", "status": "draft", "pax_stage": "Pre", "pax_type": "Inter"}


def check(key, values):
    clean, report = validate_record(record_type(key), values)
    return clean, report


# (record type, valid values, a change that breaks them, field that must carry the message, words expected)
CASES = [
    ("mediation-events", EVENT, {"title": "  "}, "title", "Title is required"),
    ("mediation-events", EVENT, {"end_date": "2024-05-01"}, "end_date",
     "End date 2024-05-01 is before start date 2024-05-10"),
    ("mediation-events", EVENT, {"start_date": "2024-13"}, "start_date", "Start date: '2024-13' is not a real date"),
    ("mediation-events", EVENT, {"format": "picnic"}, "format", "Format 'picnic' is not one of: Negotiation round"),
    ("mediation-events", EVENT, {"agreement_relation": "discussed"}, "agreement", "Choose the agreement"),
    ("mediation-events", EVENT, {"venue_country": "Kazakhstan"}, "venue_country", "must be a whole number"),
    ("mediation-events", EVENT, {"colour": "red"}, "colour", "'colour' is not a field"),
    ("mediation-events", EVENT, {"title": "a\x00b"}, "title", "control character"),
    ("contributions", CONTRIBUTION, {"personnel_type": "Soldiers"}, "personnel_type",
     "Personnel type 'Soldiers' is not one of: Troops, Staff Officer"),
    ("contributions", CONTRIBUTION, {"female_count": -1}, "female_count", "Female cannot be negative (-1)"),
    ("contributions", CONTRIBUTION, {"male_count": "many"}, "male_count", "Male must be a whole number, not 'many'"),
    ("contributions", CONTRIBUTION, {"male_count": 10**20}, "male_count", "Male is too large"),
    ("contributions", CONTRIBUTION, {"total_count": 200}, "total_count", "Total 200 is not female 3 + male 136"),
    ("contributions", CONTRIBUTION, {"female_count": None, "male_count": None}, "total_count", "Give the total"),
    ("contributions", CONTRIBUTION, {"female_count": 9, "male_count": None, "total_count": 5}, "total_count",
     "smaller than the counts by sex"),
    ("contributions", CONTRIBUTION, {"mission": None}, "mission", "Choose the mission, or say in the mission note"),
    ("contributions", CONTRIBUTION, {"reporting_date": "31.05.2024"}, "reporting_date", "is not a date"),
    ("actors", STATE, {"iso3": "KZX"}, "iso3", "'KZX' is not an ISO 3166 alpha-3 country code"),
    ("actors", STATE, {"m49": 399}, "m49", "M49 code 399 does not belong to KAZ (expected 398)"),
    ("actors", STATE, {"kind": "ngo"}, "iso3", "Only states carry ISO 3166 and M49 codes"),
    ("actors", STATE, {"kind": "empire"}, "kind", "Kind 'empire' is not one of"),
    ("actors", STATE, {"m49": 1000}, "m49", "cannot be above 999"),
    ("missions", MISSION, {"acronym": "UN;DROP"}, "acronym", "may hold only letters"),
    ("missions", MISSION, {"latitude": 91}, "latitude", "Latitude cannot be above 90"),
    ("missions", MISSION, {"longitude": "east"}, "longitude", "Longitude must be a number"),
    ("missions", MISSION, {"active": "perhaps"}, "active", "Active must be yes or no"),
    ("incidents", INCIDENT, {"killed_count": None}, "killed_count", "Give the number killed"),
    ("sources", SOURCE, {"url": "diplomaticourier"}, "url", "is not a web address"),
    ("sources", SOURCE, {"accessed_date": (dt.date.today() + dt.timedelta(days=2)).isoformat()}, "accessed_date",
     "is in the future"),
    ("agreements", AGREEMENT, {"status": "rumoured"}, "status", "Status 'rumoured' is not one of: Draft"),
    ("agreements", AGREEMENT, {"pax_stage": "Final"}, "pax_stage", "PA-X stage 'Final' is not one of"),
    ("agreements", AGREEMENT, {"pax_type": "Galactic"}, "pax_type", "PA-X type 'Galactic' is not one of"),
]


@pytest.mark.parametrize("key, valid, change, field, words", CASES,
                         ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CASES)])
def test_rule_passes_then_fails_with_message(key, valid, change, field, words):
    _, report = check(key, valid)
    assert report.ok, report.issues
    _, report = check(key, {**valid, **change})
    assert not report.ok
    assert any(words in message for message in report.for_field(field)), report.issues


def test_clean_values_are_normalised():
    clean, report = check("contributions", {**CONTRIBUTION, "personnel_type": " troops ", "female_count": "3"})
    assert report.ok
    assert clean["personnel_type"] == "Troops" and clean["female_count"] == 3 and clean["total_count"] == 139
    assert clean["reporting_date"] == dt.date(2024, 5, 31)
    clean, _ = check("missions", {**MISSION, "acronym": "undof"})
    assert clean["acronym"] == "UNDOF"
    clean, _ = check("actors", {**STATE, "iso3": "kaz"})
    assert clean["iso3"] == "KAZ"
    clean, _ = check("incidents", {**INCIDENT, "killed_qualifier": None})
    assert clean["killed_qualifier"] == "exact"


def test_participant_role_must_come_from_the_code_list():
    link = record_type("mediation-events").link("participants")
    _, report = validate_link_row(link, {"actor": 1, "role": "Host"})
    assert report.ok
    _, report = validate_link_row(link, {"actor": 1, "role": "spectator"})
    assert "Role 'spectator' is not one of: Party, Host, Mediator" in report.summary()
    _, report = validate_link_row(link, {"actor": None, "role": "party"})
    assert report.for_field("actor") == ["Actor is required"]
