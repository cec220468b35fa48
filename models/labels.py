"""Record labels in bulk: the names of referenced records read once per record type, for the labels of many rows
(an import's preview and change log, the undo of an import) where services.record_label would query per row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from models.records import RecordType, record_type


class NameBook:
    """Names of referenced records for change-log labels and the preview, read once per record type and kept
    up to date with the rows being imported."""

    def __init__(self):
        self._names: dict[str, dict[int, str]] = {}

    def _load(self, key: str) -> dict[int, str]:
        if key not in self._names:
            spec = record_type(key)
            model = spec.model
            if spec.name_field == "id":
                self._names[key] = {}
            else:
                column = getattr(model, spec.name_field)
                self._names[key] = {rid: str(name) for rid, name in model.select(model.id, column).tuples()}
        return self._names[key]

    def name(self, key: str, record_id: int | None) -> str:
        if record_id is None:
            return ""
        return self._load(key).get(record_id, f"#{record_id}")

    def remember(self, key: str, record_id: int | None, values: dict[str, Any]) -> None:
        spec = record_type(key)
        if record_id is not None and spec.name_field != "id" and values.get(spec.name_field):
            self._load(key)[record_id] = str(values[spec.name_field])

    def label(self, spec: RecordType, values: dict[str, Any]) -> str:
        """services.record_label, with referenced names from this book instead of a query each."""
        return self.labeller(spec)(values)

    def labeller(self, spec: RecordType) -> Callable[[dict[str, Any]], str]:
        """A function giving services.record_label of a row of `spec` (fast: 100,000 log entries need one)."""
        name_field = spec.name_field if spec.name_field != "id" else None
        parts = [(name, self._load(spec.field(name).ref) if spec.field(name).kind == "ref" else None)
                 for name in spec.natural_key]
        texts: dict[Any, str] = {}
        fallback = f"{spec.singular} #"

        def label(values: dict[str, Any]) -> str:
            if name_field is not None and values.get(name_field):
                return str(values[name_field])
            shown = []
            for name, names in parts:
                value = values.get(name)
                if value is None or value == "":
                    continue
                if names is not None:
                    shown.append(names.get(value) or f"#{value}")
                elif value.__class__ is str:
                    shown.append(value)
                else:
                    text = texts.get(value)
                    if text is None:
                        text = texts[value] = value.isoformat() if isinstance(value, dt.date) else str(value)
                    shown.append(text)
            return " · ".join(shown) or f"{fallback}{values.get('id')}"

        return label
