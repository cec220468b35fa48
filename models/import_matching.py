"""Finding what import rows refer to and what they would change: countries, missions and other records named by
text (through models.reconcile, once per distinct text), cells turned into the raw values
validation expects, natural keys, and the stored rows they are compared with."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from rapidfuzz import fuzz, process

from models import schema
from models.codes import code_list
from models.import_plan import as_text, plain_value
from models.reconcile import describe_miss, match_actor, match_record
from models.records import RECORD_TYPES, FieldSpec, RecordType
from models.validation import fold

# --- Finding referenced records ----------------------------------------------------------------------

class Resolver:
    """References written as text (a country's name, alias or ISO code; a mission's acronym; a title),
    resolved once per distinct text through models.reconcile. A miss is a message naming the closest
    candidates with their scores; never a guess."""

    def __init__(self):
        self._records: dict[tuple[str, str], tuple[int | None, str | None]] = {}
        self._contributors: dict[tuple, tuple[int | None, str | None, str | None]] = {}
        self._codes: dict[tuple[str, str], str] = {}
        self._by_iso: dict[str, int] | None = None
        self._known_names: dict[str, int] | None = None

    def _agrees(self, actor_id: int, name: str) -> bool:
        """Whether `name` is the actor's own name or alias: the common case of a UN row whose ISO code
        matched, confirmed from one index instead of a reconcile lookup per country."""
        if self._known_names is None:
            known: dict[str, int] = {}
            for row_id, name in schema.Actor.select(schema.Actor.id, schema.Actor.name).tuples():
                known.setdefault(fold(name), row_id)
            for actor, key in schema.ActorAlias.select(schema.ActorAlias.actor, schema.ActorAlias.alias_key).tuples():
                known[key] = actor
            self._known_names = known
        return self._known_names.get(fold(name)) == actor_id

    def record(self, key: str, text: Any) -> tuple[int | None, str | None]:
        """(id, None) or (None, why not)."""
        value = as_text(text)
        cache_key = (key, value)
        if cache_key not in self._records:
            if key == "missions":
                found = match_record(key, value.strip())
            elif key == "actors":
                found = match_actor(value)
            else:
                found = match_record(key, value)
            self._records[cache_key] = (found, None) if found is not None else (None, describe_miss(key, value))
        return self._records[cache_key]

    def contributor(self, name: Any, iso: Any, m49: Any) -> tuple[int | None, str | None, str | None]:
        """(actor id, None, None) or (None, role of the column to blame, why)."""
        cache_key = (name, iso, m49)  # cells are hashable; distinct cells are a few hundred in a UN file
        if cache_key in self._contributors:
            return self._contributors[cache_key]
        name_text, iso_text, m49_text = (as_text(part).strip() for part in cache_key)
        result: tuple[int | None, str | None, str | None]
        by_iso = by_name = None
        if iso_text:
            if self._by_iso is None:
                self._by_iso = {code: row_id for row_id, code in schema.Actor.select(
                    schema.Actor.id, schema.Actor.iso3).where(schema.Actor.iso3.is_null(False)).tuples()}
            by_iso = self._by_iso.get(iso_text.upper()) if len(iso_text) == 3 else None
        if name_text:
            by_name = by_iso if by_iso is not None and self._agrees(by_iso, name_text) else \
                self.record("actors", name_text)[0]
        if iso_text and by_iso is None:
            if not name_text:
                why = f"No state with ISO 3166 code '{iso_text}'"
            elif by_name is not None:
                why = (f"No state with ISO 3166 code '{iso_text}' ('{name_text}' is {actor_name(by_name)}: correct "
                       "or clear the code)")
            else:
                why = f"No state with ISO 3166 code '{iso_text}', and {describe_miss('actors', name_text)}"
            result = (None, "iso3", why)
        elif by_iso is not None and by_name is not None and by_iso != by_name:
            result = (None, "country", f"The ISO code {iso_text.upper()} is {actor_name(by_iso)}, but "
                      f"'{name_text}' is {actor_name(by_name)}")
        elif by_iso is not None:
            result = (by_iso, None, None)
        elif by_name is not None:
            result = (by_name, None, None)
        elif name_text:
            result = (None, "country", describe_miss("actors", name_text))
        elif m49_text:
            found = _actor_by_m49(m49_text)
            result = (found, None, None) if found else (None, "m49", f"No state with UN M49 code '{m49_text}'")
        else:
            result = (None, "country", "Contributing country is required (a name or an ISO code)")
        self._contributors[cache_key] = result
        return result

    def code_miss(self, spec: FieldSpec, value: Any) -> str:
        """Why a code cell matches no code, with the closest codes and their scores."""
        text = as_text(value).strip()
        cache_key = (spec.codes or "", text)
        if cache_key not in self._codes:
            codes = code_list(spec.codes)
            choices = {codes.labels[code]: code for code in codes.codes}
            near = process.extract(text, list(choices), scorer=fuzz.WRatio, processor=fold, limit=3)
            hint = ", ".join(f"{name} ({score:.0f}%)" for name, score, _ in near)
            allowed = "the UN's five personnel types" if spec.codes == "personnel_type" else "the allowed values"
            self._codes[cache_key] = f"{spec.label} '{text}' is not one of {allowed}; closest: {hint}"
        return self._codes[cache_key]


def _actor_by_m49(text: str) -> int | None:
    try:
        number = int(float(text))
    except ValueError:
        return None
    row = schema.Actor.get_or_none(schema.Actor.m49 == number)
    return row.id if row else None


def actor_name(actor_id: int) -> str:
    row = schema.Actor.get_or_none(schema.Actor.id == actor_id)
    return row.name if row else f"#{actor_id}"


# --- Cells → raw values for validation -----------------------------------------------------------------

EXCEL_EPOCH = dt.datetime(1899, 12, 30)


def excel_serial_date(number: float) -> dt.date | None:
    """An Excel date serial (a date cell without a date format) as a date, within plausible years."""
    if 1 <= number < 2_958_466:
        return (EXCEL_EPOCH + dt.timedelta(days=number)).date()
    return None


def cell_to_raw(spec: FieldSpec, value: Any) -> Any:
    """A cell as read → the raw value validation expects for the field (blank → None)."""
    if value is None or value == "" or (isinstance(value, str) and not value.strip()):
        return None
    kind = spec.kind
    if isinstance(value, float) and value.is_integer() and kind in ("text", "longtext", "edtf", "code", "int",
                                                                      "ref"):
        value = int(value)
    if kind == "date":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return excel_serial_date(value) or value
        return value
    if kind == "edtf":
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()[:10]
        return str(value)
    if kind in ("text", "longtext", "code"):
        if isinstance(value, dt.datetime):
            return plain_value(value)
        if isinstance(value, dt.date):
            return value.isoformat()
        return str(value) if not isinstance(value, str) else value
    if kind == "bool" and isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0
    return value

# --- Natural keys and existing rows --------------------------------------------------------------------

CASELESS_KEY_FIELDS = ("name", "title", "acronym")


def natural_key(spec: RecordType, values: dict[str, Any]) -> tuple:
    """The record's natural key as services.find_by_natural_key compares it (names without case)."""
    if spec.key == "contributions":
        # A named mission's figure is keyed without the note, as the UN keys it.
        get = values.get
        mission = get("mission")
        return (get("reporting_date"), get("contributor"), mission, get("personnel_type"),
                None if mission is not None else get("mission_note"))
    parts = []
    for name in spec.natural_key:
        value = values.get(name)
        if name in CASELESS_KEY_FIELDS and isinstance(value, str):
            value = value.casefold()
        parts.append(value)
    return tuple(parts)


class Existing:
    """Stored rows of one record type, by natural key and by id."""

    def __init__(self, spec: RecordType, rows: Iterable[dict[str, Any]]):
        self.spec = spec
        self.by_id: dict[int, dict[str, Any]] = {}
        self.by_key: dict[tuple, dict[str, Any]] = {}
        for row in rows:
            self.by_id[row["id"]] = row
            self.by_key[natural_key(spec, row)] = row

    @classmethod
    def all_of(cls, spec: RecordType) -> Existing:
        return cls(spec, spec.model.select().dicts())

    @classmethod
    def contributions_on(cls, dates: Iterable[dt.date]) -> Existing:
        """Only the reporting dates a UN file holds: one query (in chunks of the engine's parameter limit)."""
        model = schema.Contribution
        wanted = sorted(set(dates))
        rows: list[dict] = []
        for start in range(0, len(wanted), 500):
            rows.extend(model.select().where(model.reporting_date.in_(wanted[start:start + 500])).dicts())
        return cls(RECORD_TYPES["contributions"], rows)


def compare(spec: RecordType, clean: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """The fields whose cleaned value differs from the stored one."""
    changes = {}
    for spec_field in spec.fields:
        name = spec_field.name
        new, old = clean.get(name), stored.get(name)
        if new != old and not (new in (None, "") and old in (None, "")):
            changes[name] = new
    return changes
