"""The core stays free of Qt, and the command line speaks to people, not in tracebacks."""

import subprocess
import sys
from pathlib import Path

import main

ROOT = Path(__file__).resolve().parent.parent


def test_importing_all_of_models_loads_no_pyside6():
    code = (
        "import pkgutil, importlib, sys, models\n"
        "for info in pkgutil.walk_packages(models.__path__, 'models.'):\n"
        "    importlib.import_module(info.name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6'))\n"
        "print(len(list(pkgutil.walk_packages(models.__path__))), loaded)\n"
        "sys.exit(1 if loaded else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    module_count = int(result.stdout.split()[0])
    assert module_count >= 10  # the walk really imported the core's modules


def test_version_flag(capsys):
    try:
        main.main(["--version"])
    except SystemExit as stop:
        assert stop.code == 0
    assert "PaxDesk" in capsys.readouterr().out


def test_bad_argument_is_one_line_and_exit_2(capsys):
    try:
        main.main(["seed", "--no-such-flag"])
    except SystemExit as stop:
        assert stop.code == 2
    err = capsys.readouterr().err
    assert err.startswith("paxdesk: ") and "Traceback" not in err and err.count("\n") == 1


def test_unusable_database_path_is_one_line_and_exit_2(tmp_path, capsys):
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("shopping list")
    assert main.main(["seed", "--db", str(not_a_database)]) == 2
    err = capsys.readouterr().err
    assert "not a PaxDesk database" in err and "Traceback" not in err
    assert not_a_database.read_text() == "shopping list"


def test_database_path_that_is_a_folder_is_refused(tmp_path, capsys):
    assert main.main(["seed", "--db", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_seed_command_via_subprocess_creates_a_seeded_database(tmp_path):
    target = tmp_path / "x.sqlite3"
    result = subprocess.run([sys.executable, "main.py", "seed", "--db", str(target)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Seeded" in result.stdout and target.exists()
    again = subprocess.run([sys.executable, "main.py", "seed", "--db", str(target)], cwd=ROOT,
                           capture_output=True, text=True)
    assert again.returncode == 0 and "0 new records" in again.stdout


def test_first_run_creates_and_seeds_the_default_database_in_the_user_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("PAXDESK_DB", raising=False)
    target = main.database_target(main.build_parser().parse_args([]))
    assert target == str(tmp_path / "data" / "PaxDesk" / "paxdesk.sqlite3")
    database = main.open_seeded(target)
    from models import schema

    assert schema.Contingent.get(schema.Contingent.name == "KAZCON").base == "Camp Faouar"
    database.close()
    monkeypatch.setenv("PAXDESK_DB", str(tmp_path / "team.sqlite3"))
    assert main.database_target(main.build_parser().parse_args([])) == str(tmp_path / "team.sqlite3")
