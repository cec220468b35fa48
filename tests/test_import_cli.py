"""`paxdesk import`: exit codes (0 written, 1 rows refused, 2 unusable file or options), the one-line summary,
--json, --report, --dry-run, and what happens to a database that does not exist yet."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

import main
from models import schema
from models.db import open_database
from tests.un_files import un_file

GOOD = [("Kazakhstan", "KAZ", "UNDOF", "Troops", 3, 136), ("Ireland", "IRL", "UNDOF", "Troops", 10, 120),
        ("India", "IND", "UNIFIL", "Troops", 20, 800)]


@pytest.fixture
def seeded_file(seeded_template: Path, tmp_path: Path) -> Path:
    """A seeded database file the command opens itself."""
    path = tmp_path / "paxdesk.sqlite3"
    shutil.copy(seeded_template, path)
    yield path
    schema.database.close()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main.main(["import", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_good_file_is_written_and_summarised_in_one_line(seeded_file, tmp_path, capsys):
    path = un_file(tmp_path / "january.xlsx", GOOD)

    code, out, _ = run(capsys, str(path), "--db", str(seeded_file))

    assert code == 0
    assert out.strip().splitlines()[-1] == ("january.xlsx (un): 3 inserted, 0 updated, 0 unchanged, 0 rejected; "
                                            "written")
    code, out, _ = run(capsys, str(path), "--db", str(seeded_file), "--json")
    result = json.loads(out)
    assert code == 0
    assert (result["inserted"], result["updated"], result["unchanged"], result["rejected"]) == (0, 0, 3, 0)
    assert result["errors"] == [] and result["ok"] is True


def test_refused_rows_exit_1_with_every_error_in_the_json_and_the_report(seeded_file, tmp_path, capsys):
    path = un_file(tmp_path / "bad.xlsx", [*GOOD, ("Narnia", "", "UNDOF", "Troops", 1, 1)])
    report = tmp_path / "report.xlsx"

    code, out, _ = run(capsys, str(path), "--db", str(seeded_file), "--json", "--report", str(report))

    result = json.loads(out)
    assert code == 1 and result["ok"] is False and result["written"] is False
    assert result["inserted"] == 0 and result["rejected"] == 1
    error = result["errors"][0]
    assert (error["sheet"], error["row"], error["column"], error["value"]) == ("Contributions", 5,
                                                                               "contributing_country", "Narnia")
    assert "No actor called 'Narnia'" in error["reason"]
    assert result["report"] == str(report) and openpyxl.load_workbook(report)["Contributions"]["B2"].value == "Narnia"
    open_database(seeded_file)
    assert not schema.Contribution.select().where(schema.Contribution.reporting_date == dt.date(2023, 1, 31)).exists()


def test_skip_writes_the_good_rows_and_still_exits_1(seeded_file, tmp_path, capsys):
    path = un_file(tmp_path / "bad.xlsx", [*GOOD, ("Narnia", "", "UNDOF", "Troops", 1, 1)])

    code, out, err = run(capsys, str(path), "--db", str(seeded_file), "--on-error", "skip")

    assert code == 1
    assert "3 inserted, 0 updated, 0 unchanged, 1 rejected; written" in out
    assert "Contributions, row 5, contributing_country ('Narnia'): No actor called 'Narnia'" in err

    code, out, _ = run(capsys, str(path), "--db", str(seeded_file), "--on-error", "skip")
    assert code == 1  # the good rows are already in; the same file again has nothing new to write
    assert "0 inserted, 0 updated, 3 unchanged, 1 rejected; nothing to write" in out


@pytest.mark.parametrize("argv, message", [
    (["{tmp}/missing.xlsx"], "does not exist"),
    (["{tmp}/notes.xlsx"], "not an Excel workbook"),
    (["{tmp}/good.xlsx", "--sheet", "Nope"], "has no sheet 'Nope'"),
    (["{tmp}/good.xlsx", "--format", "paxdesk"], "is not a PaxDesk data workbook"),
    (["{tmp}/good.xlsx", "--report", "{tmp}/report.csv"], "must be an .xlsx file"),
])
def test_an_unusable_file_or_option_exits_2_and_creates_no_database(tmp_path, capsys, argv, message):
    (tmp_path / "notes.xlsx").write_text("not a spreadsheet")
    un_file(tmp_path / "good.xlsx", GOOD)
    target = tmp_path / "new.sqlite3"

    code, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in argv], "--db", str(target))

    assert code == 2 and message in err and "Traceback" not in err
    assert not target.exists()


def test_an_unknown_mode_is_refused_by_the_parser(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main.main(["import", str(tmp_path / "x.xlsx"), "--mode", "replace"])
    assert stop.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_json_refusal_of_a_file_is_one_object(tmp_path, capsys):
    (tmp_path / "notes.xlsx").write_text("not a spreadsheet")

    code, out, _ = run(capsys, str(tmp_path / "notes.xlsx"), "--db", str(tmp_path / "db.sqlite3"), "--json")

    assert code == 2 and json.loads(out) == {"ok": False, "error": json.loads(out)["error"]}
    assert "not an Excel workbook" in json.loads(out)["error"]


def test_a_un_file_into_a_new_database_seeds_the_reference_data_first(tmp_path, capsys):
    path = un_file(tmp_path / "january.xlsx", GOOD)
    target = tmp_path / "new.sqlite3"

    code, out, _ = run(capsys, str(path), "--db", str(target))

    assert code == 0
    assert f"Created the database {target}" in out and "Seeded reference data first" in out
    assert "3 inserted" in out
    schema.database.close()


def test_a_data_workbook_into_a_new_database_keeps_its_ids_unseeded(seeded_file, tmp_path, capsys):
    assert main.main(["export", str(tmp_path / "data.xlsx"), "--db", str(seeded_file)]) == 0
    open_database(seeded_file)
    actors = {row.id: row.name for row in schema.Actor.select()}
    capsys.readouterr()
    target = tmp_path / "copy.sqlite3"

    code, out, _ = run(capsys, str(tmp_path / "data.xlsx"), "--db", str(target))

    assert code == 0 and "Seeded" not in out
    assert {row.id: row.name for row in schema.Actor.select()} == actors
    schema.database.close()


def test_a_dry_run_into_a_missing_database_creates_nothing(tmp_path, capsys):
    path = un_file(tmp_path / "january.xlsx", GOOD)
    target = tmp_path / "never.sqlite3"

    code, out, _ = run(capsys, str(path), "--db", str(target), "--dry-run", "--json")

    result = json.loads(out)
    assert code == 0 and (result["inserted"], result["dry_run"], result["written"]) == (3, True, False)
    assert not target.exists()


def test_output_cut_short_by_its_reader_ends_without_a_traceback(seeded_file, tmp_path):
    path = un_file(tmp_path / "january.xlsx", GOOD)
    open_database(seeded_file)
    before = schema.Contribution.select().count()
    schema.database.close()
    process = subprocess.Popen([sys.executable, "main.py", "import", str(path), "--db", str(seeded_file), "--json"],
                               cwd=Path(main.__file__).parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader went away before the summary came, as with `| head -c 0`
    errors = process.stderr.read().decode()
    assert process.wait(timeout=120) == 2
    assert "Traceback" not in errors and "BrokenPipeError" not in errors
    assert errors.strip() == "paxdesk: the output was closed before all of it was written"
    schema.database.close()
    open_database(seeded_file)
    assert schema.Contribution.select().count() == before + len(GOOD)  # the import itself went through
