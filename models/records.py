"""The catalogue of record types: one description per type that validation, services, queries, forms,
import and export all read, so a new field is declared once."""

from __future__ import annotations

from dataclasses import dataclass, field

from peewee import Model

from models import schema


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    kind: str  # text, longtext, int, float, bool, edtf, date, code, ref
    required: bool = False
    codes: str | None = None  # code list name, for kind "code"
    ref: str | None = None  # record type key, for kind "ref"
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class LinkSpec:
    """Rows that belong to a record and are edited with it: parties of an event, aliases of an actor…"""

    name: str
    label: str
    model: type[Model]
    owner_field: str | None  # None for citations, which point at (record_type, record_id)
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True)
class RecordType:
    key: str
    label: str
    singular: str
    group: str
    model: type[Model]
    fields: tuple[FieldSpec, ...]
    name_field: str  # what people call a record; shown wherever another record refers to it
    natural_key: tuple[str, ...]
    date_pairs: tuple[tuple[str, str], ...] = ()
    links: tuple[LinkSpec, ...] = ()
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def a_singular(self) -> str:
        """'an actor', 'a mission': for messages that name the kind of record."""
        return f"{'an' if self.singular[0] in 'aeiou' else 'a'} {self.singular}"

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def link(self, name: str) -> LinkSpec:
        for spec in self.links:
            if spec.name == name:
                return spec
        raise KeyError(name)


def _citations() -> LinkSpec:
    return LinkSpec(
        "citations", "Citations", schema.Citation, None,
        (
            FieldSpec("source", "Source", "ref", required=True, ref="sources"),
            FieldSpec("locator", "Locator", "text", help="Where in the source: page, paragraph, section"),
            FieldSpec("quote", "Quote", "longtext", help="A short excerpt supporting the record"),
        ),
    )


def _record_types() -> list[RecordType]:
    notes = FieldSpec("notes", "Notes", "longtext")
    return [
        RecordType(
            "mediation-events", "Mediation events", "mediation event", "Mediation", schema.MediationEvent,
            (
                FieldSpec("title", "Title", "text", required=True),
                FieldSpec("process", "Peace process", "ref", ref="peace-processes"),
                FieldSpec("start_date", "Start date", "edtf", required=True, help="EDTF: 2024-05-10, 2013-02, 2017~"),
                FieldSpec("end_date", "End date", "edtf", help="EDTF; empty for a one-day event"),
                FieldSpec("venue_city", "Venue city", "text"),
                FieldSpec("venue_country", "Venue country", "ref", ref="actors"),
                FieldSpec("format", "Format", "code", codes="event_format"),
                FieldSpec("level", "Level", "code", codes="event_level"),
                FieldSpec("outcome_category", "Outcome category", "code", codes="outcome_category"),
                FieldSpec("outcome", "Outcome", "longtext", help="What the parties said or agreed"),
                FieldSpec("agreement", "Agreement", "ref", ref="agreements"),
                FieldSpec("agreement_relation", "Agreement discussed or reached", "code", codes="agreement_relation"),
                notes,
            ),
            name_field="title", natural_key=("title", "start_date"), date_pairs=(("start_date", "end_date"),),
            links=(
                LinkSpec("participants", "Participants", schema.Participation, "event", (
                    FieldSpec("actor", "Actor", "ref", required=True, ref="actors"),
                    FieldSpec("role", "Role", "code", required=True, codes="participation_role"),
                )),
                _citations(),
            ),
            description="One round of talks: a negotiation round, summit or meeting",
        ),
        RecordType(
            "peace-processes", "Peace processes", "peace process", "Mediation", schema.PeaceProcess,
            (
                FieldSpec("name", "Name", "text", required=True),
                FieldSpec("conflict", "Conflict", "text"),
                FieldSpec("start_date", "Start date", "edtf"),
                FieldSpec("end_date", "End date", "edtf"),
                FieldSpec("pax_process_id", "PA-X process id", "text"),
                notes,
            ),
            name_field="name", natural_key=("name",), date_pairs=(("start_date", "end_date"),),
            links=(_citations(),),
            description="A series of talks addressing one conflict",
        ),
        RecordType(
            "agreements", "Agreements", "agreement", "Mediation", schema.Agreement,
            (
                FieldSpec("title", "Title", "text", required=True),
                FieldSpec("process", "Peace process", "ref", ref="peace-processes"),
                FieldSpec("status", "Status", "code", required=True, codes="agreement_status"),
                FieldSpec("date", "Date", "edtf"),
                FieldSpec("pax_stage", "PA-X stage", "code", codes="pax_stage"),
                FieldSpec("pax_substage", "PA-X sub-stage", "text"),
                FieldSpec("pax_type", "PA-X type", "code", codes="pax_type"),
                notes,
            ),
            name_field="title", natural_key=("title",),
            links=(
                LinkSpec("parties", "Parties", schema.AgreementParty, "agreement", (
                    FieldSpec("actor", "Party", "ref", required=True, ref="actors"),
                )),
                _citations(),
            ),
            description="A peace agreement or draft, with its PA-X codes",
        ),
        RecordType(
            "missions", "Missions", "mission", "Peacekeeping", schema.Mission,
            (
                FieldSpec("acronym", "Acronym", "text", required=True),
                FieldSpec("name", "Name", "text", required=True),
                FieldSpec("kind", "Kind", "code", required=True, codes="mission_kind"),
                FieldSpec("lead_organisation", "Lead organisation", "ref", ref="actors"),
                FieldSpec("host_location", "Host location", "text"),
                FieldSpec("headquarters", "Headquarters", "text"),
                FieldSpec("start_date", "Start date", "edtf"),
                FieldSpec("end_date", "End date", "edtf"),
                FieldSpec("mandate_reference", "Mandate", "text", help="e.g. S/RES/350 (1974)"),
                FieldSpec("active", "Active", "bool"),
                FieldSpec("latitude", "Latitude", "float", minimum=-90, maximum=90),
                FieldSpec("longitude", "Longitude", "float", minimum=-180, maximum=180),
                notes,
            ),
            name_field="acronym", natural_key=("acronym",), date_pairs=(("start_date", "end_date"),),
            links=(_citations(),),
            description="A peace operation",
        ),
        RecordType(
            "contributions", "Contributions", "contribution", "Peacekeeping", schema.Contribution,
            (
                FieldSpec("reporting_date", "Reporting date", "date", required=True),
                FieldSpec("contributor", "Contributing country", "ref", required=True, ref="actors"),
                FieldSpec("mission", "Mission", "ref", ref="missions", help="Empty when the source names none"),
                FieldSpec("mission_note", "Mission note", "text", help="Why the mission is empty, if it is"),
                FieldSpec("personnel_type", "Personnel type", "code", required=True, codes="personnel_type"),
                FieldSpec("female_count", "Female", "int", minimum=0),
                FieldSpec("male_count", "Male", "int", minimum=0),
                FieldSpec("total_count", "Total", "int", minimum=0, help="Female + male when both are given"),
            ),
            name_field="id", natural_key=("reporting_date", "contributor", "mission", "personnel_type", "mission_note"),
            links=(_citations(),),
            description="Personnel of one country in one mission on one reporting date (the UN's grain)",
        ),
        RecordType(
            "contingents", "Contingents", "contingent", "Peacekeeping", schema.Contingent,
            (
                FieldSpec("name", "Name", "text", required=True),
                FieldSpec("contributor", "Contributing country", "ref", required=True, ref="actors"),
                FieldSpec("mission", "Mission", "ref", required=True, ref="missions"),
                FieldSpec("base", "Base", "text"),
                FieldSpec("role", "Role", "text"),
                FieldSpec("arrival_date", "Arrival date", "edtf"),
                FieldSpec("departure_date", "Departure date", "edtf"),
                notes,
            ),
            name_field="name", natural_key=("name", "mission"), date_pairs=(("arrival_date", "departure_date"),),
            links=(
                LinkSpec("milestones", "Milestones", schema.ContingentMilestone, "contingent", (
                    FieldSpec("kind", "Milestone", "code", required=True, codes="milestone_kind"),
                    FieldSpec("date", "Date", "edtf", required=True),
                    FieldSpec("place", "Place", "text"),
                    FieldSpec("counterpart", "From / to contingent", "ref", ref="contingents"),
                    FieldSpec("notes", "Notes", "text"),
                )),
                _citations(),
            ),
            description="A national unit serving in a mission",
        ),
        RecordType(
            "authorisations", "Authorisations", "authorisation", "Peacekeeping", schema.Authorisation,
            (
                FieldSpec("country", "Country", "ref", required=True, ref="actors"),
                FieldSpec("date", "Date", "edtf", required=True),
                FieldSpec("body", "Authorising body", "text", required=True),
                FieldSpec("instrument", "Instrument", "text", help="The law or decree"),
                FieldSpec("ceiling", "Ceiling (personnel)", "int", minimum=0),
                notes,
            ),
            name_field="instrument", natural_key=("country", "date", "body"),
            links=(
                LinkSpec("missions", "Missions covered", schema.AuthorisationMission, "authorisation", (
                    FieldSpec("mission", "Mission", "ref", required=True, ref="missions"),
                )),
                _citations(),
            ),
            description="A national legal act permitting deployment",
        ),
        RecordType(
            "incidents", "Incidents", "incident", "Peacekeeping", schema.Incident,
            (
                FieldSpec("title", "Title", "text", required=True),
                FieldSpec("mission", "Mission", "ref", ref="missions"),
                FieldSpec("date", "Date", "edtf", required=True),
                FieldSpec("location", "Location", "text"),
                FieldSpec("description", "Description", "longtext"),
                FieldSpec("killed_count", "Killed", "int", minimum=0),
                FieldSpec("killed_qualifier", "Killed (precision)", "code", codes="count_qualifier"),
                FieldSpec("injured_count", "Injured", "int", minimum=0),
                FieldSpec("injured_qualifier", "Injured (precision)", "code", codes="count_qualifier"),
            ),
            name_field="title", natural_key=("title", "date"),
            links=(_citations(),),
            description="A dated security event in a mission area",
        ),
        RecordType(
            "actors", "Actors", "actor", "Reference", schema.Actor,
            (
                FieldSpec("name", "Name", "text", required=True),
                FieldSpec("kind", "Kind", "code", required=True, codes="actor_kind"),
                FieldSpec("iso3", "ISO 3166 alpha-3", "text", help="States only, e.g. KAZ"),
                FieldSpec("m49", "UN M49 code", "int", minimum=0, maximum=999, help="States only, e.g. 398"),
                notes,
            ),
            name_field="name", natural_key=("name",),
            links=(
                LinkSpec("aliases", "Aliases", schema.ActorAlias, "actor", (
                    FieldSpec("alias", "Alias", "text", required=True),
                )),
                LinkSpec("members", "Members", schema.GroupMembership, "group", (
                    FieldSpec("member", "Member", "ref", required=True, ref="actors"),
                )),
                _citations(),
            ),
            description="A state, organisation, group of states, armed group, NGO or person",
        ),
        RecordType(
            "sources", "Sources", "source", "Reference", schema.Source,
            (
                FieldSpec("title", "Title", "text", required=True),
                FieldSpec("author", "Author", "text"),
                FieldSpec("publisher", "Publisher", "text"),
                FieldSpec("publication_date", "Published", "edtf"),
                FieldSpec("url", "URL", "text"),
                FieldSpec("accessed_date", "Accessed", "date"),
            ),
            name_field="title", natural_key=("title",),
            description="A document that records cite",
        ),
    ]


RECORD_TYPES: dict[str, RecordType] = {spec.key: spec for spec in _record_types()}
GROUPS = ("Mediation", "Peacekeeping", "Reference")


def record_type(key: str) -> RecordType:
    try:
        return RECORD_TYPES[key]
    except KeyError:
        raise KeyError(f"Unknown record type '{key}'; known: {', '.join(RECORD_TYPES)}") from None


def record_type_for_model(model: type[Model]) -> RecordType | None:
    for spec in RECORD_TYPES.values():
        if spec.model is model:
            return spec
    return None
