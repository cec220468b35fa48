"""Controlled vocabularies (personnel types, roles, PA-X codes…), read from seeds/code_lists.toml."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CODE_LISTS_FILE = Path(__file__).resolve().parent.parent / "seeds" / "code_lists.toml"


@dataclass(frozen=True)
class CodeList:
    name: str
    description: str
    codes: tuple[str, ...]
    labels: dict[str, str]

    def label(self, code: str | None) -> str:
        return self.labels.get(code, code or "") if code else ""

    def match(self, text: str) -> str | None:
        """The code for `text` given as a code or a label, ignoring case and surrounding space."""
        wanted = text.strip().casefold()
        for code in self.codes:
            if wanted in (code.casefold(), self.labels[code].casefold()):
                return code
        return None


@cache
def code_lists() -> dict[str, CodeList]:
    raw = tomllib.loads(CODE_LISTS_FILE.read_text(encoding="utf-8"))
    return {
        name: CodeList(
            name=name,
            description=body["description"],
            codes=tuple(item["code"] for item in body["items"]),
            labels={item["code"]: item["label"] for item in body["items"]},
        )
        for name, body in raw.items()
    }


def code_list(name: str) -> CodeList:
    return code_lists()[name]
