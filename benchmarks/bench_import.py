"""Benchmark: importing a 100,000-row UN contributions workbook, against the bare minimum in the same process.

Baseline: python-calamine parses the same file, and sqlite3 inserts the same rows (actors and missions looked
up in a dict) into an equivalent contribution table, with the same indexes, in one executemany transaction.
Ours: the full import (file checks, reconciliation, validation, natural keys, backup, change log) into a
seeded database. Prints the medians of several runs, their ratio (target ≤ 2x) and the peak memory; then the
undo of that import (services.revert_change_set: version checks, deletes, change log) and its ratio to the import.

    python benchmarks/bench_import.py [--rows 100000] [--runs 3] [--profile]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
import pycountry  # noqa: E402
import xlsxwriter  # noqa: E402

MISSIONS = ["UNDOF", "UNIFIL", "UNMISS", "UNISFA", "MINUSCA", "MONUSCO", "UNFICYP", "UNTSO", "MINURSO", "UNMIK"]
TYPES = ["Troops", "Staff Officer", "Experts on Mission", "Individual Police", "Formed Police Units"]
HEADERS = ["contribution_id", "contributing_country", "isocode3", "m49_code", "mission_acronym", "personnel_type",
           "female_personnel", "male_personnel", "last_reporting_date"]


def generate(path: Path, rows: int) -> None:
    """A UN data-hub file: every country × mission × personnel type, month after month, as real dates."""
    countries = [(c.name, c.alpha_3, int(c.numeric)) for c in pycountry.countries]
    random.seed(1)
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("Contributions")
    date_format = workbook.add_format({"num_format": "dd/mm/yyyy"})
    sheet.write_row(0, 0, HEADERS)
    per_month = len(countries) * len(MISSIONS) * len(TYPES)
    for index in range(rows):
        month, rest = divmod(index, per_month)
        country = countries[rest // (len(MISSIONS) * len(TYPES))]
        mission = MISSIONS[(rest // len(TYPES)) % len(MISSIONS)]
        kind = TYPES[rest % len(TYPES)]
        sheet.write_row(index + 1, 0, [index + 1, country[0], country[1], country[2], mission, kind,
                                       random.randint(0, 40), random.randint(0, 800)])
        sheet.write_datetime(index + 1, 8, dt.datetime(2010 + month // 12, month % 12 + 1, 28), date_format)
    workbook.close()


def seeded_template(folder: Path) -> Path:
    from models import schema
    from models.db import open_database
    from models.seeding import seed_database

    path = folder / "seeded.sqlite3"
    db = open_database(path)
    seed_database()
    db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    schema.database.close()
    return path


def baseline(workbook: Path, folder: Path) -> tuple[float, float]:
    """calamine parse + one executemany into an equivalent table (same columns and indexes)."""
    from python_calamine import CalamineWorkbook

    target = folder / "baseline.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    connection = sqlite3.connect(target)
    connection.execute("PRAGMA journal_mode=wal")
    connection.execute("PRAGMA synchronous=normal")
    connection.executescript("""
        CREATE TABLE contribution (id INTEGER PRIMARY KEY, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL,
            version INTEGER NOT NULL, reporting_date DATE NOT NULL, contributor_id INTEGER NOT NULL,
            mission_id INTEGER, mission_note TEXT NOT NULL, personnel_type TEXT NOT NULL, female_count INTEGER,
            male_count INTEGER, total_count INTEGER NOT NULL);
        CREATE UNIQUE INDEX key ON contribution (reporting_date, contributor_id, mission_id, personnel_type)
            WHERE mission_id IS NOT NULL;
        CREATE INDEX by_mission ON contribution (mission_id, reporting_date);
        CREATE INDEX by_contributor ON contribution (contributor_id, reporting_date);
    """)
    start, cpu = time.perf_counter(), time.process_time()
    rows = CalamineWorkbook.from_path(str(workbook)).get_sheet_by_name("Contributions").to_python()
    actors: dict[str, int] = {}
    missions: dict[str, int] = {}
    now = dt.datetime.now().isoformat(sep=" ", timespec="seconds")
    data = []
    for row in rows[1:]:
        actor = actors.setdefault(row[2], len(actors) + 1)
        mission = missions.setdefault(row[4], len(missions) + 1)
        female, male = int(row[6]), int(row[7])
        data.append((now, now, 1, row[8].isoformat(), actor, mission, "", row[5], female, male, female + male))
    with connection:
        connection.executemany(
            "INSERT INTO contribution (created_at, updated_at, version, reporting_date, contributor_id, mission_id, "
            "mission_note, personnel_type, female_count, male_count, total_count) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            data)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    connection.close()
    return elapsed, cpu


def ours(workbook: Path, template: Path, folder: Path, profile: bool) -> tuple[float, float, int, float]:
    from models import schema
    from models.db import open_database
    from models.importing import ImportOptions, import_file
    from models.services import revert_change_set

    target = folder / "ours.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    for old in folder.glob("ours.before-import.*"):
        old.unlink()
    shutil.copy(template, target)
    open_database(target)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start, cpu = time.perf_counter(), time.process_time()
    _, result = import_file(workbook, ImportOptions())
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(25)
    if result.inserted == 0 or result.errors:
        raise SystemExit(f"the import did not write the rows: {result.summary()}")
    start = time.perf_counter()
    revert_change_set(result.change_set_id)
    undo = time.perf_counter() - start
    if schema.Contribution.select().count() >= result.inserted:
        raise SystemExit("the undo left the imported rows in place")
    schema.database.close()
    return elapsed, cpu, result.inserted, undo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the last import run")
    args = parser.parse_args()
    os.environ.setdefault("PAXDESK_USER", "benchmark")
    process = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="paxdesk-bench-") as temp:
        folder = Path(temp)
        workbook = folder / "un_contributions.xlsx"
        started = time.perf_counter()
        generate(workbook, args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s "
              f"({workbook.stat().st_size / 2**20:.1f} MB)")
        template = seeded_template(folder)
        base_times, our_times, base_cpu, our_cpu, undo_times = [], [], [], [], []
        for run in range(args.runs):
            gc.collect()
            elapsed, cpu = baseline(workbook, folder)
            base_times.append(elapsed)
            base_cpu.append(cpu)
            gc.collect()
            elapsed, cpu, inserted, undo = ours(workbook, template, folder, args.profile and run == args.runs - 1)
            our_times.append(elapsed)
            our_cpu.append(cpu)
            undo_times.append(undo)
            print(f"run {run + 1}: baseline {base_times[-1]:.2f} s (cpu {base_cpu[-1]:.2f} s), "
                  f"import {our_times[-1]:.2f} s (cpu {our_cpu[-1]:.2f} s), {inserted:,} rows, "
                  f"undo {undo:.2f} s")
        base, mine = statistics.median(base_times), statistics.median(our_times)
        peak = process.memory_info().rss
        try:
            import resource

            peak = max(peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        except ImportError:  # not on Windows
            pass
        print(f"baseline (calamine parse + executemany): median {base:.2f} s")
        print(f"PaxDesk import (checks, reconciliation, validation, change log): median {mine:.2f} s, "
              f"{args.rows / mine:,.0f} rows/s")
        print(f"ratio: {mine / base:.2f}x (target ≤ 2x)   peak memory: {peak / 2**20:,.0f} MB")
        # On a shared machine wall time also measures the neighbours; processor time measures only this work.
        base_cpu_median, our_cpu_median = statistics.median(base_cpu), statistics.median(our_cpu)
        print(f"processor time: baseline median {base_cpu_median:.2f} s, import median {our_cpu_median:.2f} s, "
              f"ratio {our_cpu_median / base_cpu_median:.2f}x")
        undo_median = statistics.median(undo_times)
        print(f"undo of the import (one change set): median {undo_median:.2f} s, "
              f"{undo_median / mine:.2f}x the import, {undo_median / base:.2f}x the baseline")


if __name__ == "__main__":
    main()
