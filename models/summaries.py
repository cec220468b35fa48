"""Summaries of PaxDesk data as SQL aggregations returning plain rows: personnel by contributor and mission,
personnel over time, mediation events, agreements, and authorisations against deployments.

Totals are computed by the database (GROUP BY, SUM), so a summary over a million contribution rows reads a
few hundred aggregated rows, not a million objects. The rows are plain Python values, reusable by the Excel
summary, the GUI and tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from peewee import JOIN, Case, fn

from models import schema
from models.codes import code_list
from models.dates import bounds, humanise

C = schema.Contribution
UNNAMED = "Mission not named"


@dataclass(frozen=True)
class SummaryFilters:
    """What a summary covers: a reporting date (None: the latest), contributors and missions (ids; empty: all)."""

    as_of: dt.date | None = None
    contributors: tuple[int, ...] = ()
    missions: tuple[int, ...] = ()

    def describe(self) -> str:
        parts = [f"reporting date {self.as_of.isoformat()}" if self.as_of else "latest reporting date"]
        if self.contributors:
            parts.append("contributors " + ", ".join(_names(schema.Actor, schema.Actor.name, self.contributors)))
        if self.missions:
            parts.append("missions " + ", ".join(_names(schema.Mission, schema.Mission.acronym, self.missions)))
        return "; ".join(parts)


def mission_names(ids) -> list[str]:
    return _names(schema.Mission, schema.Mission.acronym, ids)


def _names(model, column, ids) -> list[str]:
    found = dict(model.select(model.id, column).where(model.id.in_(list(ids))).tuples())
    return [found.get(i, f"#{i}") for i in ids]


def _where(query, filters: SummaryFilters):
    if filters.contributors:
        query = query.where(C.contributor.in_(list(filters.contributors)))
    if filters.missions:
        query = query.where(C.mission.in_(list(filters.missions)))
    return query


def _known_sum(column):
    """SUM of a count that may be unknown: NULL (shown blank) unless every row of the group knows it,
    so that a total-only figure never reads as '0 women'."""
    return Case(None, [(fn.COUNT(column) == fn.COUNT(C.id), fn.SUM(column))], None)


def latest_reporting_date(filters: SummaryFilters = SummaryFilters()) -> dt.date | None:
    value = _where(C.select(fn.MAX(C.reporting_date)), filters).scalar()
    return _as_date(value)


def _as_date(value) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def reporting_dates(limit: int = 500) -> list[dt.date]:
    """The distinct reporting dates, newest first (for a date chooser)."""
    query = C.select(C.reporting_date).distinct().order_by(C.reporting_date.desc()).limit(limit)
    return [_as_date(value) for (value,) in query.tuples()]


# --- Personnel by contributor and mission ----------------------------------------------------------

@dataclass
class Counts:
    female: int | None
    male: int | None
    total: int


@dataclass
class PersonnelMatrix:
    as_of: dt.date | None
    contributors: list[tuple[int, str]] = field(default_factory=list)  # ordered, largest first
    missions: list[tuple[int | None, str]] = field(default_factory=list)  # None: figures without a mission
    cells: dict[tuple[int, int | None], int] = field(default_factory=dict)
    by_contributor: dict[int, Counts] = field(default_factory=dict)
    by_mission: dict[int | None, int] = field(default_factory=dict)
    types: list[str] = field(default_factory=list)
    type_cells: dict[tuple[int, str], int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    grand: Counts = field(default_factory=lambda: Counts(None, None, 0))


def personnel_matrix(filters: SummaryFilters = SummaryFilters()) -> PersonnelMatrix:
    """Personnel on one reporting date: contributor × mission and contributor × personnel type, with totals."""
    as_of = filters.as_of or latest_reporting_date(filters)
    result = PersonnelMatrix(as_of)
    if as_of is None:
        return result

    def on_date(*columns):
        return _where(C.select(*columns).where(C.reporting_date == as_of), filters)

    total = fn.SUM(C.total_count)
    for contributor, mission, value in on_date(C.contributor, C.mission, total).group_by(
            C.contributor, C.mission).tuples():
        result.cells[(contributor, mission)] = int(value)
    for contributor, female, male, value in on_date(
            C.contributor, _known_sum(C.female_count), _known_sum(C.male_count), total
    ).group_by(C.contributor).tuples():
        result.by_contributor[contributor] = Counts(_int(female), _int(male), int(value))
    for mission, value in on_date(C.mission, total).group_by(C.mission).tuples():
        result.by_mission[mission] = int(value)
    for contributor, personnel_type, value in on_date(C.contributor, C.personnel_type, total).group_by(
            C.contributor, C.personnel_type).tuples():
        result.type_cells[(contributor, personnel_type)] = int(value)
    for personnel_type, value in on_date(C.personnel_type, total).group_by(C.personnel_type).tuples():
        result.by_type[personnel_type] = int(value)
    grand = on_date(_known_sum(C.female_count), _known_sum(C.male_count), total).tuples().first()
    result.grand = Counts(_int(grand[0]), _int(grand[1]), int(grand[2] or 0))

    names = dict(schema.Actor.select(schema.Actor.id, schema.Actor.name).where(
        schema.Actor.id.in_(list(result.by_contributor))).tuples())
    result.contributors = sorted(((i, names.get(i, f"#{i}")) for i in result.by_contributor),
                                 key=lambda item: (-result.by_contributor[item[0]].total, item[1]))
    acronyms = dict(schema.Mission.select(schema.Mission.id, schema.Mission.acronym).where(
        schema.Mission.id.in_([m for m in result.by_mission if m is not None])).tuples())
    named = sorted(((m, acronyms.get(m, f"#{m}")) for m in result.by_mission if m is not None),
                   key=lambda item: (-result.by_mission[item[0]], item[1]))
    result.missions = named + ([(None, UNNAMED)] if None in result.by_mission else [])
    order = code_list("personnel_type").codes
    result.types = [t for t in order if t in result.by_type] + sorted(set(result.by_type) - set(order))
    return result


def _int(value) -> int | None:
    return None if value is None else int(value)


# --- Personnel over time ---------------------------------------------------------------------------

@dataclass
class TimeSeries:
    months: list[str]  # "2024-05", oldest first
    series: list[tuple[int, str]]  # contributors
    values: dict[tuple[str, int], int]  # (month, contributor) → total on the last reporting date of that month
    dates: dict[str, dt.date]  # month → the last reporting date used


def personnel_over_time(filters: SummaryFilters = SummaryFilters(), top: int = 5) -> TimeSeries:
    """Monthly totals per contributor (over the chosen missions). A month with several reporting dates takes
    its last one, so figures are never counted twice. Without chosen contributors: the `top` largest on the
    reporting date."""
    contributors = list(filters.contributors)
    if not contributors:
        matrix_date = filters.as_of or latest_reporting_date(filters)
        query = _where(C.select(C.contributor, fn.SUM(C.total_count).alias("n")), filters).where(
            C.reporting_date == matrix_date).group_by(C.contributor).order_by(fn.SUM(C.total_count).desc()).limit(top)
        contributors = [row[0] for row in query.tuples()]
    result = TimeSeries([], [], {}, {})
    if not contributors:
        return result
    query = _where(C.select(C.reporting_date, C.contributor, fn.SUM(C.total_count)), filters).where(
        C.contributor.in_(contributors))
    if filters.as_of:
        query = query.where(C.reporting_date <= filters.as_of)
    per_date: dict[tuple[str, int], tuple[dt.date, int]] = {}
    for value, contributor, total in query.group_by(C.reporting_date, C.contributor).tuples():
        day = _as_date(value)
        month = day.isoformat()[:7]
        kept = per_date.get((month, contributor))
        if kept is None or kept[0] < day:
            per_date[(month, contributor)] = (day, int(total))
        if month not in result.dates or result.dates[month] < day:
            result.dates[month] = day
    result.months = sorted(result.dates)
    result.values = {key: total for key, (_, total) in per_date.items()}
    names = dict(schema.Actor.select(schema.Actor.id, schema.Actor.name).where(
        schema.Actor.id.in_(contributors)).tuples())
    result.series = [(i, names.get(i, f"#{i}")) for i in contributors]
    return result


# --- Mediation -------------------------------------------------------------------------------------

E = schema.MediationEvent
NO_COUNTRY = "Country not recorded"


@dataclass
class EventRow:
    process: str
    title: str
    date: str
    year: str
    host: str
    city: str
    parties: str
    hosts_and_mediators: str
    outcome_category: str
    outcome: str


def events_by_host_year() -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """(host countries, years, counts) of mediation events; the year is the EDTF start date's first four
    characters, so '2017~' counts in 2017."""
    country = schema.Actor.alias()
    year = fn.SUBSTR(E.start_date, 1, 4)
    query = (E.select(country.name, year, fn.COUNT(E.id)).join(country, on=(E.venue_country == country.id),
                                                                   join_type=JOIN.LEFT_OUTER)
             .group_by(country.name, year).tuples())
    counts: dict[tuple[str, str], int] = {}
    for name, event_year, count in query:
        counts[(name or NO_COUNTRY, event_year)] = int(count)
    hosts = sorted({h for h, _ in counts}, key=lambda h: (-sum(v for (k, _), v in counts.items() if k == h), h))
    years = sorted({y for _, y in counts})
    return hosts, years, counts


def event_rows() -> list[EventRow]:
    """Every event with its process, host, parties and outcome, grouped by process then date."""
    process, country = schema.PeaceProcess.alias(), schema.Actor.alias()
    query = (E.select(E.id, E.title, E.start_date, E.end_date, E.venue_city, E.outcome_category, E.outcome,
                      process.name.alias("process_name"), country.name.alias("country_name"))
             .join(process, JOIN.LEFT_OUTER, on=(E.process == process.id)).switch(E)
             .join(country, JOIN.LEFT_OUTER, on=(E.venue_country == country.id))
             .order_by(process.name, E.start_date, E.title).dicts())
    rows = list(query)
    roles: dict[int, dict[str, list[str]]] = {}
    P, A = schema.Participation, schema.Actor
    for event_id, role, name in (P.select(P.event, P.role, A.name).join(A).where(
            P.event.in_([r["id"] for r in rows])).order_by(A.name).tuples() if rows else []):
        roles.setdefault(event_id, {}).setdefault(role, []).append(name)
    labels = code_list("outcome_category")
    role_labels = code_list("participation_role")
    result = []
    for row in rows:
        by_role = roles.get(row["id"], {})
        others = [f"{name} ({role_labels.label(role).lower()})" for role in ("host", "mediator", "facilitator",
                                                                            "guarantor", "observer")
                  for name in by_role.get(role, [])]
        span = humanise(row["start_date"]) + (f" – {humanise(row['end_date'])}" if row["end_date"] else "")
        result.append(EventRow(
            process=row["process_name"] or "No process recorded", title=row["title"], date=span,
            year=row["start_date"][:4], host=row["country_name"] or "", city=row["venue_city"] or "",
            parties=", ".join(by_role.get("party", [])), hosts_and_mediators=", ".join(others),
            outcome_category=labels.label(row["outcome_category"]), outcome=row["outcome"] or "",
        ))
    return result


def events_by_process() -> list[tuple[str, int, str, str]]:
    """(process, events, first start, last start) per process, largest first."""
    process = schema.PeaceProcess.alias()
    query = (E.select(process.name, fn.COUNT(E.id), fn.MIN(E.start_date), fn.MAX(E.start_date))
             .join(process, JOIN.LEFT_OUTER, on=(E.process == process.id)).group_by(process.name).tuples())
    rows = [(name or "No process recorded", int(n), humanise(first), humanise(last)) for name, n, first, last in query]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


# --- Agreements ------------------------------------------------------------------------------------

NO_STAGE = "No PA-X stage"


def agreements_by_stage_status() -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """(stage labels, status labels, counts) in code-list order; agreements without a stage counted apart."""
    A = schema.Agreement
    stages, statuses = code_list("pax_stage"), code_list("agreement_status")
    counts: dict[tuple[str, str], int] = {}
    for stage, status, count in A.select(A.pax_stage, A.status, fn.COUNT(A.id)).group_by(
            A.pax_stage, A.status).tuples():
        counts[(stages.label(stage) if stage else NO_STAGE, statuses.label(status))] = int(count)
    stage_order = [stages.label(c) for c in stages.codes] + [NO_STAGE]
    status_order = [statuses.label(c) for c in statuses.codes]
    used_stages = [s for s in stage_order if any(k == s for k, _ in counts)]
    return used_stages, status_order, counts


def agreement_rows() -> list[tuple[str, str, str, str, str, str]]:
    """(title, process, status, date, PA-X stage, parties) of every agreement."""
    A, P, Party, Actor = schema.Agreement, schema.PeaceProcess, schema.AgreementParty, schema.Actor
    parties: dict[int, list[str]] = {}
    for agreement, name in Party.select(Party.agreement, Actor.name).join(Actor).order_by(Actor.name).tuples():
        parties.setdefault(agreement, []).append(name)
    stages, statuses = code_list("pax_stage"), code_list("agreement_status")
    query = (A.select(A.id, A.title, P.name, A.status, A.date, A.pax_stage)
             .join(P, JOIN.LEFT_OUTER, on=(A.process == P.id)).order_by(A.date, A.title).tuples())
    return [(title, process or "", statuses.label(status), humanise(date), stages.label(stage) if stage else "",
             ", ".join(parties.get(agreement_id, []))) for agreement_id, title, process, status, date, stage in query]


# --- Authorisations against deployments ------------------------------------------------------------

DEPLOYED_RULE = (
    "Deployed = the country's figures on its latest reporting date on or after the authorisation date. "
    "'In covered missions' counts only figures whose mission is one the authorisation covers. Figures the "
    "source gives without naming a mission cannot be placed: they are shown apart and added only to the "
    "'at most' column (covered + not named). 'All missions' is the country's whole total on that date."
)


@dataclass
class AuthorisationRow:
    country: str
    date: str
    body: str
    instrument: str
    ceiling: int | None
    covered: str  # mission acronyms
    reporting_date: dt.date | None
    in_covered: int | None
    in_other_named: int | None
    not_named: int | None
    at_most_covered: int | None
    all_missions: int | None

    @property
    def share_of_ceiling(self) -> float | None:
        if self.ceiling and self.in_covered is not None:
            return self.in_covered / self.ceiling
        return None


def authorisations_vs_deployed(filters: SummaryFilters = SummaryFilters()) -> list[AuthorisationRow]:
    Au, AM, Mission, Actor = schema.Authorisation, schema.AuthorisationMission, schema.Mission, schema.Actor
    query = Au.select(Au.id, Au.country, Actor.name, Au.date, Au.body, Au.instrument, Au.ceiling).join(
        Actor, on=(Au.country == Actor.id)).order_by(Actor.name, Au.date).tuples()
    if filters.contributors:
        query = query.where(Au.country.in_(list(filters.contributors)))
    covered: dict[int, list[tuple[int, str]]] = {}
    for authorisation, mission, acronym in AM.select(AM.authorisation, AM.mission, Mission.acronym).join(
            Mission).order_by(Mission.acronym).tuples():
        covered.setdefault(authorisation, []).append((mission, acronym))
    rows = []
    for authorisation, country, name, date, body, instrument, ceiling in query:
        missions = covered.get(authorisation, [])
        earliest = bounds(date)[0]
        latest = C.select(fn.MAX(C.reporting_date)).where(C.contributor == country, C.reporting_date >= earliest)
        if filters.as_of:
            latest = latest.where(C.reporting_date <= filters.as_of)
        reporting_date = _as_date(latest.scalar())
        figures = {"covered": None, "other": None, "unnamed": None, "all": None}
        if reporting_date is not None:
            mission_ids = [m for m, _ in missions]
            in_covered = C.mission.in_(mission_ids) if mission_ids else (C.id < 0)
            kind = Case(None, [(C.mission.is_null(), "unnamed"), (in_covered, "covered")], "other")
            figures.update({"covered": 0, "other": 0, "unnamed": 0})
            for group, total in C.select(kind, fn.SUM(C.total_count)).where(
                    C.contributor == country, C.reporting_date == reporting_date).group_by(kind).tuples():
                figures[group] = int(total)
            figures["all"] = figures["covered"] + figures["other"] + figures["unnamed"]
        rows.append(AuthorisationRow(
            country=name, date=humanise(date), body=body, instrument=instrument or "", ceiling=ceiling,
            covered=", ".join(a for _, a in missions), reporting_date=reporting_date,
            in_covered=figures["covered"], in_other_named=figures["other"], not_named=figures["unnamed"],
            at_most_covered=None if figures["covered"] is None else figures["covered"] + figures["unnamed"],
            all_missions=figures["all"],
        ))
    return rows
