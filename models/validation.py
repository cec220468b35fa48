"""Validation as pure functions: raw values in, cleaned values and a report of problems out.

Forms, table edits, import and seeding all call `validate_record`; the messages are written for curators.
Checks that need the database (unknown references, duplicates) live in `check_against_database`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import pycountry

from models.codes import code_list
from models.dates import DateError, ends_before, normalise_edtf, parse_exact_date
from models.records import FieldSpec, LinkSpec, RecordType

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Issue:
    field: str
    message: str
    severity: str = ERROR


@dataclass
class Report:
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(issue.severity == ERROR for issue in self.issues)

    def add(self, field_name: str, message: str, severity: str = ERROR) -> None:
        self.issues.append(Issue(field_name, message, severity))

    def extend(self, other: Report, prefix: str = "") -> None:
        for issue in other.issues:
            self.issues.append(Issue(prefix + issue.field, issue.message, issue.severity))

    def for_field(self, field_name: str) -> list[str]:
        return [issue.message for issue in self.issues if issue.field == field_name]

    def summary(self) -> str:
        return "; ".join(issue.message for issue in self.issues if issue.severity == ERROR)


def fold(text: str) -> str:
    """Case- and accent-insensitive key: 'Türkiye' and 'TURKIYE' fold alike."""
    decomposed = unicodedata.normalize("NFKD", text.strip())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", stripped).casefold()


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, float) and math.isnan(value)
    )


def clean_value(spec: FieldSpec, value: Any) -> Any:
    """Convert one raw value (typed, or text from a form or a cell) to what the database stores.
    Raises ValueError with a curator's message."""
    if _is_blank(value):
        if spec.required:
            raise ValueError(f"{spec.label} is required")
        if spec.kind == "bool":
            return False
        return "" if spec.kind in ("text", "longtext") else None
    if spec.kind in ("text", "longtext"):
        if not isinstance(value, str | int | float):
            raise ValueError(f"{spec.label} must be text")
        text = str(value).strip()
        if "\x00" in text:
            raise ValueError(f"{spec.label} contains a control character that cannot be stored")
        return text
    if spec.kind in ("int", "ref"):
        number = _whole_number(spec, value)
        if spec.kind == "int":
            _check_range(spec, number)
        return number
    if spec.kind == "float":
        number = _real_number(spec, value)
        _check_range(spec, number)
        return number
    if spec.kind == "bool":
        return _boolean(spec, value)
    if spec.kind == "edtf":
        try:
            return normalise_edtf(str(value))
        except DateError as exc:
            raise ValueError(f"{spec.label}: {exc}") from None
    if spec.kind == "date":
        try:
            return parse_exact_date(value)
        except DateError as exc:
            raise ValueError(f"{spec.label}: {exc}") from None
    if spec.kind == "code":
        codes = code_list(spec.codes)
        code = codes.match(str(value))
        if code is None:
            allowed = ", ".join(codes.labels[c] for c in codes.codes)
            raise ValueError(f"{spec.label} '{value}' is not one of: {allowed}")
        return code
    raise ValueError(f"{spec.label} has an unknown kind {spec.kind}")


LARGEST_WHOLE_NUMBER = 10**15  # far beyond any count, and safely inside every engine's integer type


def _whole_number(spec: FieldSpec, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{spec.label} must be a whole number, not {value}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?\d{1,16}(\.0+)?", text):
            raise ValueError(f"{spec.label} must be a whole number, not '{value}'")
        number = int(text.split(".")[0])
    if abs(number) > LARGEST_WHOLE_NUMBER:
        raise ValueError(f"{spec.label} is too large ({number})")
    return number


def _real_number(spec: FieldSpec, value: Any) -> float:
    try:
        number = float(str(value).strip().replace(",", ".")) if not isinstance(value, int | float) else float(value)
    except ValueError:
        raise ValueError(f"{spec.label} must be a number, not '{value}'") from None
    if not math.isfinite(number):
        raise ValueError(f"{spec.label} must be a finite number")
    return number


def _check_range(spec: FieldSpec, number: float) -> None:
    if spec.minimum is not None and number < spec.minimum:
        word = "negative" if spec.minimum == 0 else f"below {spec.minimum:g}"
        raise ValueError(f"{spec.label} cannot be {word} ({number:g})")
    if spec.maximum is not None and number > spec.maximum:
        raise ValueError(f"{spec.label} cannot be above {spec.maximum:g} ({number:g})")


def _boolean(spec: FieldSpec, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold()
    if text in ("1", "true", "yes", "y", "x"):
        return True
    if text in ("0", "false", "no", "n"):
        return False
    raise ValueError(f"{spec.label} must be yes or no, not '{value}'")


def validate_fields(fields: tuple[FieldSpec, ...], raw: dict[str, Any], partial: bool = False,
                    memo: dict | None = None) -> tuple[dict, Report]:
    """Clean each field of `raw`. With `partial`, fields absent from `raw` are left out, not required.
    `memo` (a dict kept across calls) remembers each field's verdict per distinct value: an import of 100,000
    rows holds a few hundred distinct values per column, and clean_value is a pure function of both."""
    if memo is not None:
        return _validate_fields_memo(fields, raw, partial, memo)
    clean: dict[str, Any] = {}
    report = Report()
    for spec in fields:
        if partial and spec.name not in raw:
            continue
        try:
            clean[spec.name] = clean_value(spec, raw.get(spec.name))
        except ValueError as exc:
            report.add(spec.name, str(exc))
    _unknown_names(fields, raw, report)
    return clean, report


def _unknown_names(fields: tuple[FieldSpec, ...], raw: dict[str, Any], report: Report,
                   known: set[str] | None = None) -> None:
    known = known if known is not None else {spec.name for spec in fields}
    if not raw.keys() <= known:
        for name in raw:
            if name not in known:
                report.add(name, f"'{name}' is not a field of this record")


def _validate_fields_memo(fields: tuple[FieldSpec, ...], raw: dict[str, Any], partial: bool,
                          memo: dict) -> tuple[dict, Report]:
    # Per field tuple, once per memo: each spec's name and verdict cache, and the set of known names.
    prepared = memo.get(id(fields))
    if prepared is None or prepared[0] is not fields:
        prepared = memo[id(fields)] = (fields, [(spec, spec.name, memo.setdefault(id(spec), {})) for spec in fields],
                                       {spec.name for spec in fields})
    clean: dict[str, Any] = {}
    report = Report()
    for spec, name, verdicts in prepared[1]:
        if partial and name not in raw:
            continue
        value = raw.get(name)
        key = (value.__class__, value)  # the class too: 1, 1.0 and True are equal keys otherwise
        try:
            verdict = verdicts.get(key)
        except TypeError:  # an unhashable value: judge it without the memo
            key, verdict = None, None
        if verdict is None:
            try:
                verdict = (True, clean_value(spec, value))
            except ValueError as exc:
                verdict = (False, str(exc))
            if key is not None:
                verdicts[key] = verdict
        if verdict[0]:
            clean[name] = verdict[1]
        else:
            report.add(name, verdict[1])
    _unknown_names(fields, raw, report, prepared[2])
    return clean, report


def validate_record(record_type: RecordType, raw: dict[str, Any], memo: dict | None = None) -> tuple[dict, Report]:
    """Clean and check a whole record (all fields given, as a form or an import row holds them); `memo` as
    for validate_fields."""
    clean, report = validate_fields(record_type.fields, raw, memo=memo)
    for start, end in record_type.date_pairs:
        if clean.get(start) and clean.get(end) and ends_before(clean[end], clean[start]):
            report.add(end, f"End date {clean[end]} is before start date {clean[start]}")
    rule = RECORD_RULES.get(record_type.key)
    if rule:
        rule(clean, report)
    return clean, report


def validate_link_row(link: LinkSpec, raw: dict[str, Any]) -> tuple[dict, Report]:
    clean, report = validate_fields(link.fields, raw)
    return clean, report


def _contribution_rule(clean: dict, report: Report) -> None:
    female, male, total = clean.get("female_count"), clean.get("male_count"), clean.get("total_count")
    if female is not None and male is not None:
        if total is not None and total != female + male:
            report.add("total_count", f"Total {total} is not female {female} + male {male} = {female + male}")
        else:
            clean["total_count"] = female + male
    elif total is None:
        report.add("total_count", "Give the total, or both the female and male counts")
    elif (female or 0) + (male or 0) > total:
        report.add("total_count", f"Total {total} is smaller than the counts by sex")
    if clean.get("mission") is None and not clean.get("mission_note"):
        report.add("mission", "Choose the mission, or say in the mission note why the source names none")


def _actor_rule(clean: dict, report: Report) -> None:
    iso3, m49 = clean.get("iso3") or None, clean.get("m49")
    clean["iso3"] = iso3.upper() if iso3 else None
    if clean.get("kind") != "state":
        if iso3 or m49 is not None:
            report.add("iso3", "Only states carry ISO 3166 and M49 codes")
        return
    if iso3:
        country = pycountry.countries.get(alpha_3=iso3.upper())
        if country is None:
            report.add("iso3", f"'{iso3}' is not an ISO 3166 alpha-3 country code")
        elif m49 is not None and int(country.numeric) != m49:
            report.add("m49", f"M49 code {m49} does not belong to {iso3.upper()} (expected {int(country.numeric)})")


def _mission_rule(clean: dict, report: Report) -> None:
    acronym = clean.get("acronym")
    if acronym:
        clean["acronym"] = acronym.upper()
        if not re.fullmatch(r"[A-Z0-9][A-Z0-9 .\-/]*", clean["acronym"]):
            report.add("acronym", f"Acronym '{acronym}' may hold only letters, digits, spaces, dots and hyphens")


def _incident_rule(clean: dict, report: Report) -> None:
    for what in ("killed", "injured"):
        count, qualifier = clean.get(f"{what}_count"), clean.get(f"{what}_qualifier")
        if count is None and qualifier:
            report.add(f"{what}_count", f"Give the number {what} that '{qualifier}' qualifies")
        elif count is not None and not qualifier:
            clean[f"{what}_qualifier"] = "exact"


def _source_rule(clean: dict, report: Report) -> None:
    accessed = clean.get("accessed_date")
    if accessed and accessed > dt.date.today():
        report.add("accessed_date", f"Accessed date {accessed} is in the future")
    url = clean.get("url")
    if url and not re.match(r"^(https?|ftp)://\S+$", url):
        report.add("url", f"'{url}' is not a web address (http:// or https://)")


def _event_rule(clean: dict, report: Report) -> None:
    if clean.get("agreement_relation") and clean.get("agreement") is None:
        report.add("agreement", "Choose the agreement that was discussed or reached")


RECORD_RULES = {
    "contributions": _contribution_rule,
    "actors": _actor_rule,
    "missions": _mission_rule,
    "incidents": _incident_rule,
    "sources": _source_rule,
    "mediation-events": _event_rule,
}
