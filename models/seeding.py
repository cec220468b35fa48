"""Filling a database with reference data and the founding case, from the text files in seeds/.

Seeding is idempotent: a record whose natural key exists is left as it is (a curator may have edited it),
so running it twice changes nothing.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pycountry

from models import schema
from models.reconcile import describe_miss, match_record
from models.records import RecordType, record_type
from models.services import ChangeRecorder, RecordRefused, find_by_natural_key, recording, save_record
from models.validation import fold, validate_record

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
# Record types in an order where everything a record refers to is seeded before it.
FOUNDING_ORDER = ("sources", "actors", "peace-processes", "agreements", "missions", "mediation-events",
                  "contingents", "authorisations", "contributions", "incidents")


class SeedError(Exception):
    """A seed file holds something that cannot be loaded; the message names the record."""


@dataclass
class SeedResult:
    created: dict[str, int] = field(default_factory=dict)

    def count(self, key: str) -> None:
        self.created[key] = self.created.get(key, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.created.values())


def seed_database() -> SeedResult:
    """Load every seed file; the whole run is one transaction and one change-log entry."""
    result = SeedResult()
    with recording("seed", "Seed reference data and the founding case") as rec:
        _seed_states(rec, result)
        _seed_organisations(rec, result)
        _seed_missions(rec, result)
        _seed_founding_case(rec, result)
    return result


def _save_new(key: str, values: dict, links: dict, rec: ChangeRecorder, result: SeedResult) -> None:
    spec = record_type(key)
    clean, report = validate_record(spec, values)
    if report.ok and find_by_natural_key(spec, clean) is not None:
        return
    try:
        save_record(key, values, links=links, recorder=rec)
    except RecordRefused as exc:
        raise SeedError(f"Seed {spec.singular} {values}: {exc}") from exc
    result.count(key)


def _read_csv(name: str) -> list[dict[str, str]]:
    path = SEEDS / name
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _seed_states(rec: ChangeRecorder, result: SeedResult) -> None:
    extra: dict[str, list[str]] = {}
    for row in _read_csv("country_aliases.csv"):
        extra.setdefault(row["iso3"], []).append(row["alias"])
    for country in pycountry.countries:
        name = getattr(country, "common_name", None) or country.name
        names = [country.name, getattr(country, "official_name", None), getattr(country, "common_name", None),
                 *extra.get(country.alpha_3, [])]
        aliases, seen = [], {fold(name)}
        for alias in names:
            if alias and fold(alias) not in seen and not schema.ActorAlias.select().where(
                    schema.ActorAlias.alias_key == fold(alias)).exists():
                seen.add(fold(alias))
                aliases.append({"alias": alias})
        values = {"name": name, "kind": "state", "iso3": country.alpha_3, "m49": int(country.numeric), "notes": ""}
        _save_new("actors", values, {"aliases": aliases}, rec, result)


def _seed_organisations(rec: ChangeRecorder, result: SeedResult) -> None:
    for row in _read_csv("organisations.csv"):
        aliases = [{"alias": a.strip()} for a in row.get("aliases", "").split(";") if a.strip()]
        _save_new("actors", {"name": row["name"], "kind": row["kind"], "iso3": "", "m49": None, "notes": ""},
                  {"aliases": aliases}, rec, result)


def _seed_missions(rec: ChangeRecorder, result: SeedResult) -> None:
    for row in _read_csv("missions.csv"):
        values = dict(row)
        values["lead_organisation"] = _resolve("actors", row["lead_organisation"])
        values["notes"] = ""
        _save_new("missions", values, {}, rec, result)


def _resolve(target: str, text: str | None) -> int | None:
    """The id of the `target` record named `text`; a miss is a SeedError naming the closest names."""
    if not text:
        return None
    found = match_record(target, text)
    if found is None:
        raise SeedError(describe_miss(target, text))
    return found


def _seed_founding_case(rec: ChangeRecorder, result: SeedResult) -> None:
    data = tomllib.loads((SEEDS / "founding_case.toml").read_text(encoding="utf-8"))
    for key in FOUNDING_ORDER:
        spec = record_type(key)
        for entry in data.get(key, []):
            values, links = _split(spec, entry, data["source"])
            _save_new(key, values, links, rec, result)


def _split(spec: RecordType, entry: dict, default_source: str) -> tuple[dict, dict]:
    """Seed-file entry → (record values, link rows), with names resolved to ids."""
    link_names = {link.name for link in spec.links}
    values = {f.name: entry.get(f.name) for f in spec.fields}
    for f in spec.fields:
        if f.kind == "ref" and isinstance(values[f.name], str):
            values[f.name] = _resolve(f.ref, values[f.name])
    links: dict[str, list[dict]] = {}
    for name in link_names & entry.keys():
        link = spec.link(name)
        rows = []
        for row in entry[name]:
            row = {"source": default_source, **row} if link.owner_field is None else dict(row)
            for f in link.fields:
                if f.kind == "ref" and isinstance(row.get(f.name), str):
                    row[f.name] = _resolve(f.ref, row[f.name])
            rows.append(row)
        links[name] = rows
    unknown = set(entry) - link_names - {f.name for f in spec.fields}
    if unknown:
        raise SeedError(f"{spec.label}: unknown keys {sorted(unknown)} in {entry}")
    return values, links
