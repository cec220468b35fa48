"""Matching names written by people and spreadsheets to records: actors by ISO code, name or alias;
missions by acronym; other records by their name. No silent guesses: a miss names the closest candidates."""

from __future__ import annotations

from dataclasses import dataclass

from rapidfuzz import fuzz, process

from models import schema
from models.records import record_type
from models.validation import fold


@dataclass(frozen=True)
class Candidate:
    record_id: int
    name: str
    score: float


def match_actor(text: str) -> int | None:
    """The actor whose ISO alpha-3 code, name or alias is `text` (case- and accent-insensitive)."""
    value = text.strip()
    if not value:
        return None
    if len(value) == 3 and value.isalpha():
        row = schema.Actor.get_or_none(schema.Actor.iso3 == value.upper())
        if row:
            return row.id
    alias = schema.ActorAlias.get_or_none(schema.ActorAlias.alias_key == fold(value))
    if alias:
        return alias.actor_id
    key = fold(value)
    for actor_id, name in schema.Actor.select(schema.Actor.id, schema.Actor.name).tuples():
        if fold(name) == key:
            return actor_id
    return None


def match_record(key: str, text: str) -> int | None:
    """The record of type `key` named `text`; actors also by code and alias."""
    if key == "actors":
        return match_actor(text)
    spec = record_type(key)
    wanted = fold(text)
    column = getattr(spec.model, spec.name_field)
    for record_id, name in spec.model.select(spec.model.id, column).tuples():
        if name is not None and fold(str(name)) == wanted:
            return record_id
    return None


def candidates(key: str, text: str, limit: int = 3) -> list[Candidate]:
    """The closest names to `text`, scored 0–100, for the message that explains a miss."""
    spec = record_type(key)
    column = getattr(spec.model, spec.name_field)
    names: dict[str, int] = {str(name): rid for rid, name in spec.model.select(spec.model.id, column).tuples()}
    if key == "actors":
        for alias, actor_id in schema.ActorAlias.select(schema.ActorAlias.alias, schema.ActorAlias.actor).tuples():
            names.setdefault(alias, actor_id)
    found = process.extract(text, list(names), scorer=fuzz.WRatio, processor=fold, limit=limit * 3)
    result: list[Candidate] = []
    for name, score, _ in found:
        if names[name] not in {c.record_id for c in result}:
            result.append(Candidate(names[name], name, round(score, 1)))
    return result[:limit]


def describe_miss(key: str, text: str) -> str:
    spec = record_type(key)
    near = candidates(key, text)
    hint = ", ".join(f"{c.name} ({c.score:.0f}%)" for c in near)
    return f"No {spec.singular} called '{text}'" + (f"; closest: {hint}" if hint else "")
