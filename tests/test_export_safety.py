"""Export safety: formula-like text stays text, names in every script survive, a failed or cancelled export
leaves the user's previous file untouched and no temporary file, and unusable paths get a clear message."""

from __future__ import annotations

import json
import os
from pathlib import Path

import openpyxl
import pytest

import main
from models import schema
from models.excel_write import ExportError, atomic_target
from models.export_summary import export_summary
from models.export_view import export_view
from models.progress import Cancelled, Progress
from models.queries import RecordQuery
from models.services import create_record

INJECTIONS = ['=HYPERLINK("x")', "+1", "-2", "@SUM(A1)", "=1+1"]
SCRIPTS = ["Қазақстан", "Հայաստան", "Azərbaycan", "سوريا"]


def add_awkward_records() -> None:
    """Records whose names look like formulas or are written in Kazakh, Armenian, Azerbaijani and Arabic."""
    kazakhstan = schema.Actor.get(name="Kazakhstan").id
    for index, name in enumerate(INJECTIONS + SCRIPTS):
        actor = create_record("actors", {"name": name, "kind": "ngo", "notes": f"note {name}"},
                              links={"aliases": [{"alias": f"{name} alias {index}"}]})
        create_record("mediation-events", {
            "title": f"{name}", "start_date": f"2020-0{index % 9 + 1}", "venue_country": kazakhstan,
            "venue_city": name, "outcome": name,
        }, links={"participants": [{"actor": actor, "role": "party"}]})


def all_cells(path: Path):
    workbook = openpyxl.load_workbook(path)
    for ws in workbook:
        for row in ws.iter_rows():
            yield from row


def test_formula_like_text_and_scripts_are_stored_as_text(seeded_db, tmp_path):
    add_awkward_records()
    view = tmp_path / "actors.xlsx"
    export_view(RecordQuery("actors", sort_column="name"), view)
    summary = tmp_path / "summary.xlsx"
    export_summary(summary)
    for path in (view, summary):
        cells = list(all_cells(path))
        assert not [c.coordinate for c in cells if c.data_type == "f"], path.name
        values = {c.value for c in cells}
        for text in INJECTIONS + SCRIPTS:
            assert text in values, f"{text!r} missing from {path.name}"
        for cell in cells:
            if isinstance(cell.value, str) and cell.value[:1] in "=+-@\t":
                assert cell.data_type == "s" and cell.quotePrefix, f"{path.name} {cell.coordinate} {cell.value!r}"


def test_failure_mid_write_keeps_the_previous_file_and_leaves_no_temporary_file(seeded_db, out, monkeypatch):
    target = out / "report.xlsx"
    target.write_bytes(b"the previous report")
    from openpyxl.workbook.workbook import Workbook

    def crash(self, filename):
        Path(filename).write_bytes(b"PK half a zip")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Workbook, "save", crash)
    with pytest.raises(ExportError, match="No space left"):
        export_summary(target)
    assert target.read_bytes() == b"the previous report"
    assert sorted(p.name for p in out.iterdir()) == ["report.xlsx"]


def test_cancel_keeps_the_previous_file_and_leaves_no_temporary_file(seeded_db, out):
    target = out / "view.xlsx"
    target.write_bytes(b"previous")
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        export_view(RecordQuery("actors"), target, progress)
    with pytest.raises(Cancelled):
        export_summary(target, progress=progress)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in out.iterdir()] == ["view.xlsx"]


def test_a_file_open_elsewhere_is_a_clear_message(tmp_path, monkeypatch):
    target = tmp_path / "open-in-excel.xlsx"
    target.write_bytes(b"locked")

    def locked(source, destination):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", locked)
    with pytest.raises(ExportError, match="open in another program"):
        with atomic_target(target) as temp:
            temp.write_bytes(b"new")
    assert target.read_bytes() == b"locked"
    assert [p.name for p in tmp_path.iterdir()] == ["open-in-excel.xlsx"]


def test_an_unwritable_folder_is_a_clear_message(tmp_path, monkeypatch):
    import tempfile

    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ExportError, match="Cannot write in the folder .*permission denied"):
        with atomic_target(tmp_path / "x.xlsx"):
            pass


@pytest.mark.parametrize(("name", "message"), [
    ("missing-folder/out.xlsx", "does not exist"),
    ("out.csv", "must end in .xlsx"),
    ("a-folder.xlsx", "is a folder"),
])
def test_unusable_paths(tmp_path, name, message):
    (tmp_path / "a-folder.xlsx").mkdir()
    with pytest.raises(ExportError, match=message):
        with atomic_target(tmp_path / name):
            pass


@pytest.mark.sqlite_only  # the command line opens the test's database file
def test_command_line_unusable_path_exits_2_with_one_line(seeded_db, db_path, tmp_path, capsys):
    seeded_db.close()
    code = main.main(["export", str(tmp_path / "no-such-folder" / "out.xlsx"), "--db", str(db_path)])
    captured = capsys.readouterr()
    assert code == 2
    assert "does not exist" in captured.err and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1

    code = main.main(["export", str(tmp_path / "no-such-folder" / "out.xlsx"), "--db", str(db_path), "--json"])
    answer = json.loads(capsys.readouterr().out)
    assert code == 2 and answer["ok"] is False and "does not exist" in answer["error"]


def test_command_line_missing_database_exits_2(tmp_path, capsys):
    code = main.main(["export", str(tmp_path / "out.xlsx"), "--db", str(tmp_path / "nothing.sqlite3")])
    assert code == 2
    assert "no PaxDesk database" in capsys.readouterr().err
    assert not (tmp_path / "nothing.sqlite3").exists() and not (tmp_path / "out.xlsx").exists()


@pytest.mark.sqlite_only  # the command line opens the test's database file
def test_command_line_summary_with_json(seeded_db, db_path, tmp_path, capsys):
    seeded_db.close()
    out = tmp_path / "summary.xlsx"
    code = main.main(["export", str(out), "--db", str(db_path), "--kind", "summary", "--json"])
    answer = json.loads(capsys.readouterr().out)
    assert code == 0 and answer["ok"] is True
    assert answer["path"] == str(out) and answer["sheets"]["Personnel"] == 1
    assert openpyxl.load_workbook(out)["Personnel"]["A1"].value.startswith("Uniformed personnel")


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_the_export_is_not_private_like_a_temporary_file(tmp_path):
    with atomic_target(tmp_path / "shared.xlsx") as temp:
        temp.write_bytes(b"content")
    mode = (tmp_path / "shared.xlsx").stat().st_mode & 0o777
    umask = os.umask(0o022)
    os.umask(umask)
    assert mode == 0o666 & ~umask
