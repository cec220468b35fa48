"""The Peewee tables of PaxDesk: reference, mediation, peacekeeping records and the change log.

Constraints here are the last line of defence; models.validation is the first and gives the messages.
"""

from __future__ import annotations

import datetime as dt

from peewee import (
    SQL,
    AutoField,
    BooleanField,
    Check,
    DatabaseProxy,
    DateField,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

database = DatabaseProxy()

SCHEMA_VERSION = 2


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def non_negative(column: str) -> Check:
    return Check(f"{column} IS NULL OR {column} >= 0")


def date_order(start: str, end: str) -> SQL:
    """CHECK that an EDTF end date is not certainly before its start (compare the common prefix,
    qualifiers stripped, unknown digits read as the widest case)."""
    # '%%': psycopg2 reads a lone % in any statement as a parameter marker and sends '%%' as '%'; SQLite
    # gets '%%' itself, which as RTRIM's set of characters to strip means the same as '%'.
    start_text = f"REPLACE(RTRIM({start}, '~?%%'), 'X', '0')"
    end_text = f"REPLACE(RTRIM({end}, '~?%%'), 'X', '9')"
    return SQL(
        f"CHECK ({start} IS NULL OR {end} IS NULL OR "
        f"{end_text} >= SUBSTR({start_text}, 1, LENGTH({end_text})))"
    )


class BaseModel(Model):
    id = AutoField()
    created_at = DateTimeField(default=utc_now)
    updated_at = DateTimeField(default=utc_now)
    # Optimistic concurrency: every update and delete names the version it read.
    version = IntegerField(default=1)

    class Meta:
        database = database
        legacy_table_names = False


# --- Reference -------------------------------------------------------------------------------------

class Actor(BaseModel):
    name = TextField(unique=True)
    kind = TextField()
    iso3 = TextField(null=True, unique=True, constraints=[Check("iso3 IS NULL OR LENGTH(iso3) = 3")])
    m49 = IntegerField(null=True, unique=True, constraints=[non_negative("m49")])
    notes = TextField(default="")


class ActorAlias(BaseModel):
    actor = ForeignKeyField(Actor, backref="aliases", on_delete="CASCADE")
    alias = TextField()
    # Case- and accent-folded alias, so that "Türkiye", "TURKIYE" and "turkiye" are one key.
    alias_key = TextField(unique=True)


class GroupMembership(BaseModel):
    group = ForeignKeyField(Actor, backref="memberships", on_delete="CASCADE")
    member = ForeignKeyField(Actor, backref="groups")

    class Meta:
        indexes = ((("group", "member"), True),)


class Mission(BaseModel):
    acronym = TextField(unique=True)
    name = TextField()
    lead_organisation = ForeignKeyField(Actor, null=True, backref="led_missions")
    kind = TextField()
    host_location = TextField(default="")
    headquarters = TextField(default="")
    start_date = TextField(null=True)
    end_date = TextField(null=True)
    mandate_reference = TextField(default="")
    active = BooleanField(default=True)
    latitude = FloatField(null=True, constraints=[Check("latitude IS NULL OR latitude BETWEEN -90 AND 90")])
    longitude = FloatField(
        null=True, constraints=[Check("longitude IS NULL OR longitude BETWEEN -180 AND 180")]
    )
    notes = TextField(default="")

    class Meta:
        constraints = [date_order("start_date", "end_date")]


class Source(BaseModel):
    title = TextField(unique=True)
    author = TextField(default="")
    publisher = TextField(default="")
    publication_date = TextField(null=True)
    url = TextField(default="")
    accessed_date = DateField(null=True)


class Citation(BaseModel):
    source = ForeignKeyField(Source, backref="citations")
    # Citations attach to any record: the record type's key and the record's id.
    record_type = TextField(index=True)
    record_id = IntegerField()
    locator = TextField(default="")
    quote = TextField(default="")

    class Meta:
        indexes = ((("source", "record_type", "record_id", "locator"), True), (("record_type", "record_id"), False))


# --- Mediation -------------------------------------------------------------------------------------

class PeaceProcess(BaseModel):
    name = TextField(unique=True)
    conflict = TextField(default="")
    start_date = TextField(null=True)
    end_date = TextField(null=True)
    pax_process_id = TextField(default="")
    notes = TextField(default="")

    class Meta:
        constraints = [date_order("start_date", "end_date")]


class Agreement(BaseModel):
    title = TextField(unique=True)
    process = ForeignKeyField(PeaceProcess, null=True, backref="agreements")
    status = TextField()
    date = TextField(null=True)
    pax_stage = TextField(null=True)
    pax_substage = TextField(default="")
    pax_type = TextField(null=True)
    notes = TextField(default="")


class AgreementParty(BaseModel):
    agreement = ForeignKeyField(Agreement, backref="parties", on_delete="CASCADE")
    actor = ForeignKeyField(Actor, backref="agreements")

    class Meta:
        indexes = ((("agreement", "actor"), True),)


class MediationEvent(BaseModel):
    title = TextField()
    process = ForeignKeyField(PeaceProcess, null=True, backref="events")
    start_date = TextField(index=True)
    end_date = TextField(null=True)
    venue_city = TextField(default="")
    venue_country = ForeignKeyField(Actor, null=True, backref="hosted_events")
    format = TextField(null=True)
    level = TextField(null=True)
    outcome_category = TextField(null=True)
    outcome = TextField(default="")
    agreement = ForeignKeyField(Agreement, null=True, backref="events")
    agreement_relation = TextField(null=True)
    notes = TextField(default="")

    class Meta:
        indexes = ((("title", "start_date"), True),)
        constraints = [date_order("start_date", "end_date")]


class Participation(BaseModel):
    event = ForeignKeyField(MediationEvent, backref="participations", on_delete="CASCADE")
    actor = ForeignKeyField(Actor, backref="participations")
    role = TextField()

    class Meta:
        indexes = ((("event", "actor", "role"), True),)


# --- Peacekeeping ----------------------------------------------------------------------------------

class Contribution(BaseModel):
    reporting_date = DateField()
    contributor = ForeignKeyField(Actor, backref="contributions")
    # NULL when the source gives a figure without naming the mission; mission_note then says so.
    mission = ForeignKeyField(Mission, null=True, backref="contributions")
    mission_note = TextField(default="")
    personnel_type = TextField()
    female_count = IntegerField(null=True, constraints=[non_negative("female_count")])
    male_count = IntegerField(null=True, constraints=[non_negative("male_count")])
    # Derived from female + male when both are known; sources such as press reports give only a total.
    total_count = IntegerField(constraints=[non_negative("total_count")])

    class Meta:
        constraints = [
            SQL("CHECK (female_count IS NULL OR male_count IS NULL OR total_count = female_count + male_count)")
        ]


# The UN's natural key; a figure without a named mission is keyed by its note instead.
Contribution.add_index(
    Contribution.index(
        Contribution.reporting_date, Contribution.contributor, Contribution.mission, Contribution.personnel_type,
        unique=True,
    ).where(Contribution.mission.is_null(False))
)
Contribution.add_index(
    Contribution.index(
        Contribution.reporting_date, Contribution.contributor, Contribution.personnel_type,
        Contribution.mission_note, unique=True, name="contribution_unnamed_mission_key",
    ).where(Contribution.mission.is_null(True))
)
Contribution.add_index(Contribution.index(Contribution.mission, Contribution.reporting_date))
Contribution.add_index(Contribution.index(Contribution.contributor, Contribution.reporting_date))


class Contingent(BaseModel):
    name = TextField()
    contributor = ForeignKeyField(Actor, backref="contingents")
    mission = ForeignKeyField(Mission, backref="contingents")
    base = TextField(default="")
    role = TextField(default="")
    arrival_date = TextField(null=True)
    departure_date = TextField(null=True)
    notes = TextField(default="")

    class Meta:
        indexes = ((("name", "mission"), True),)
        constraints = [date_order("arrival_date", "departure_date")]


class ContingentMilestone(BaseModel):
    contingent = ForeignKeyField(Contingent, backref="milestones", on_delete="CASCADE")
    kind = TextField()
    date = TextField()
    place = TextField(default="")
    # For a transfer of authority: the contingent handing over.
    counterpart = ForeignKeyField(Contingent, null=True, backref="counterpart_milestones")
    notes = TextField(default="")

    class Meta:
        indexes = ((("contingent", "kind", "date"), True),)


class Authorisation(BaseModel):
    country = ForeignKeyField(Actor, backref="authorisations")
    date = TextField()
    body = TextField()
    instrument = TextField(default="")
    ceiling = IntegerField(null=True, constraints=[non_negative("ceiling")])
    notes = TextField(default="")

    class Meta:
        indexes = ((("country", "date", "body"), True),)


class AuthorisationMission(BaseModel):
    authorisation = ForeignKeyField(Authorisation, backref="covered_missions", on_delete="CASCADE")
    mission = ForeignKeyField(Mission, backref="authorisations")

    class Meta:
        indexes = ((("authorisation", "mission"), True),)


class Incident(BaseModel):
    title = TextField()
    mission = ForeignKeyField(Mission, null=True, backref="incidents")
    date = TextField()
    location = TextField(default="")
    description = TextField(default="")
    killed_count = IntegerField(null=True, constraints=[non_negative("killed_count")])
    killed_qualifier = TextField(null=True)
    injured_count = IntegerField(null=True, constraints=[non_negative("injured_count")])
    injured_qualifier = TextField(null=True)

    class Meta:
        indexes = ((("title", "date"), True),)


# --- Change log and settings -----------------------------------------------------------------------

class ChangeSet(Model):
    """One user action: a form save, a delete, an import, a seed run, an undo."""

    id = AutoField()
    at = DateTimeField(default=utc_now, index=True)
    user = TextField()
    kind = TextField()
    summary = TextField()

    class Meta:
        database = database
        legacy_table_names = False


class ChangeLogEntry(Model):
    """One row changed within a change set, with its values before and after (JSON objects); or, with
    last_record_id, the rows record_id..last_record_id of one table inserted together (an import's new records,
    all at version 1, their values the rows themselves): one entry where 100,000 would cost a fifth of the
    import. Undo reads such a range as the rows it covers (services.revert_change_set)."""

    id = AutoField()
    change_set = ForeignKeyField(ChangeSet, backref="entries", on_delete="CASCADE")
    table_name = TextField()
    record_id = IntegerField()
    action = TextField(constraints=[Check("action IN ('insert', 'update', 'delete')")])
    record_label = TextField(default="")
    old_values = TextField(null=True)
    new_values = TextField(null=True)
    last_record_id = IntegerField(null=True)

    class Meta:
        database = database
        legacy_table_names = False
        indexes = ((("table_name", "record_id"), False),)


# The ranges alone, to find the one holding a record (services.last_change) without reading the single entries.
RANGE_INDEX = ChangeLogEntry.index(ChangeLogEntry.table_name, ChangeLogEntry.record_id,
                                   name="change_log_entry_ranges").where(ChangeLogEntry.last_record_id.is_null(False))
ChangeLogEntry.add_index(RANGE_INDEX)


class Setting(Model):
    """Settings that belong to the data (schema version, database identity), not to the user interface."""

    key = TextField(primary_key=True)
    value = TextField()

    class Meta:
        database = database
        legacy_table_names = False


RECORD_TABLES = [
    Actor, ActorAlias, GroupMembership, Mission, Source, Citation, PeaceProcess, Agreement, AgreementParty,
    MediationEvent, Participation, Contribution, Contingent, ContingentMilestone, Authorisation,
    AuthorisationMission, Incident,
]
ALL_TABLES = [*RECORD_TABLES, ChangeSet, ChangeLogEntry, Setting]
