"""Benchmark of Excel export.

1. The data workbook of a database holding 100,000 contribution rows, against a baseline measured in the
   same run: xlsxwriter in constant-memory mode writing the same cells (values read beforehand, no styles,
   no validation). Target: at most 1.5x the baseline. openpyxl's write-only mode is measured too, writing the
   same cells, to show why the data workbook is written with xlsxwriter.
2. The summary workbook over 1,000,000 contribution rows, against one full scan of the table
   (SELECT SUM(total_count)): how many table scans the whole summary costs.

Synthetic data is written with sqlite3 executemany into temporary files. Medians of several runs.

    python benchmarks/bench_export.py [--rows 100000] [--summary-rows 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models import schema  # noqa: E402
from models.db import open_database  # noqa: E402

PERSONNEL_TYPES = ("Troops", "Staff Officer", "Experts on Mission", "Individual Police", "Formed Police Units")


def make_database(path: Path, rows: int, seed: int = 7) -> None:
    """A PaxDesk database with `rows` contributions: monthly reporting dates × contributors × missions × types."""
    db = open_database(path)
    db.close()
    rng = random.Random(seed)
    now = dt.datetime(2024, 6, 1).isoformat(" ")
    contributors, missions = 120, 16
    per_date = contributors * missions * len(PERSONNEL_TYPES)
    dates = max(1, -(-rows // per_date))
    connection = sqlite3.connect(path)
    with connection:
        connection.executemany(
            "INSERT INTO actor (id, name, kind, notes, created_at, updated_at, version) VALUES (?, ?, ?, '', ?, ?, 1)",
            [(i, f"Country {i:03d} Қазақстан" if i == 1 else f"Country {i:03d}", "state", now, now)
             for i in range(1, contributors + 1)])
        connection.executemany(
            "INSERT INTO mission (id, acronym, name, kind, host_location, headquarters, mandate_reference, active,"
            " notes, created_at, updated_at, version) VALUES (?, ?, ?, 'peacekeeping_operation', '', '', '', 1, '',"
            " ?, ?, 1)",
            [(i, f"M{i:02d}", f"Mission {i}", now, now) for i in range(1, missions + 1)])

        def contributions():
            written = 0
            for month in range(dates):
                year, index = divmod(month, 12)
                day = (dt.date(2010 + year, index + 1, 28)).isoformat()
                for contributor in range(1, contributors + 1):
                    for mission in range(1, missions + 1):
                        for personnel_type in PERSONNEL_TYPES:
                            if written >= rows:
                                return
                            female, male = rng.randint(0, 40), rng.randint(0, 400)
                            written += 1
                            yield (day, contributor, mission, personnel_type, female, male, female + male, now, now)

        connection.executemany(
            "INSERT INTO contribution (reporting_date, contributor_id, mission_id, mission_note, personnel_type,"
            " female_count, male_count, total_count, created_at, updated_at, version)"
            " VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?, 1)",
            contributions())
    connection.close()


def median_time(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def baseline_xlsxwriter(path: Path, sheets: list[tuple[str, list[str], list[list]]]) -> None:
    import xlsxwriter

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    for name, headers, rows in sheets:
        ws = workbook.add_worksheet(name)
        for column, header in enumerate(headers):
            ws.write_string(0, column, header)
        for r, values in enumerate(rows, start=1):
            for column, value in enumerate(values):
                if value is None or value == "":
                    continue
                if isinstance(value, str):
                    ws.write_string(r, column, value)
                elif isinstance(value, int | float):
                    ws.write_number(r, column, value)
                elif isinstance(value, dt.date):
                    ws.write_datetime(r, column, value, date_format)
    workbook.close()


def openpyxl_write_only(path: Path, sheets: list[tuple[str, list[str], list[list]]]) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    for name, headers, rows in sheets:
        ws = workbook.create_sheet(name)
        ws.append(headers)
        for values in rows:
            ws.append([None if v == "" else v for v in values])
    workbook.save(path)


def bench_data(folder: Path, rows: int, runs: int) -> float:
    from models.export_data import data_sheet_cells, export_data

    path = folder / f"data-{rows}.sqlite3"
    start = time.perf_counter()
    make_database(path, rows)
    print(f"generated {rows:,} contribution rows in {time.perf_counter() - start:.1f} s")
    open_database(path)
    sheets = data_sheet_cells()  # the exporter's own cells, read once, for the baselines
    cells = sum(len(r) * len(headers) for _, headers, r in sheets)
    print(f"data workbook: {len(sheets)} sheets, {cells:,} cells")
    # Interleaved, so that load from other programs falls on both alike.
    exported_times, baseline_times, write_only_times = [], [], []
    for _ in range(runs):
        exported_times.append(median_time(lambda: export_data(folder / "data.xlsx"), 1))
        baseline_times.append(median_time(lambda: baseline_xlsxwriter(folder / "baseline.xlsx", sheets), 1))
        write_only_times.append(median_time(lambda: openpyxl_write_only(folder / "openpyxl.xlsx", sheets), 1))
    exported, baseline = statistics.median(exported_times), statistics.median(baseline_times)
    write_only = statistics.median(write_only_times)
    print("runs (export, baseline, openpyxl): " + "; ".join(
        f"{a:.2f} {b:.2f} {c:.2f}" for a, b, c in zip(exported_times, baseline_times, write_only_times, strict=True)))
    print(f"export_data (PaxDesk, xlsxwriter):             {exported:7.2f} s")
    print(f"baseline xlsxwriter constant_memory, same cells: {baseline:7.2f} s")
    print(f"openpyxl write-only, same cells:               {write_only:7.2f} s  "
          f"({write_only / baseline:.2f}x baseline)")
    ratio = exported / baseline
    print(f"ratio export / baseline: {ratio:.2f}x (target <= 1.50x) {'OK' if ratio <= 1.5 else 'OVER TARGET'}")
    schema.database.close()
    return ratio


def bench_summary(folder: Path, rows: int, runs: int) -> float:
    from models.export_summary import export_summary

    path = folder / f"summary-{rows}.sqlite3"
    start = time.perf_counter()
    make_database(path, rows)
    print(f"generated {rows:,} contribution rows in {time.perf_counter() - start:.1f} s")
    db = open_database(path)
    scan_times, summary_times = [], []
    for _ in range(runs):
        scan_times.append(median_time(lambda: db.execute_sql("SELECT SUM(total_count) FROM contribution").fetchone(),
                                      1))
        summary_times.append(median_time(lambda: export_summary(folder / "summary.xlsx"), 1))
    scan, summary = statistics.median(scan_times), statistics.median(summary_times)
    print(f"export_summary over {rows:,} rows: {summary:7.2f} s")
    print(f"baseline one full scan (SUM):     {scan:7.2f} s")
    print(f"ratio summary / scan: {summary / scan:.1f}x")
    db.close()
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--summary-rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paxdesk-bench-") as temp:
        folder = Path(temp)
        print(f"== data workbook, {args.rows:,} contribution rows, median of {args.runs} runs")
        ratio = bench_data(folder, args.rows, args.runs)
        print(f"== summary workbook, {args.summary_rows:,} contribution rows, median of {args.runs} runs")
        bench_summary(folder, args.summary_rows, args.runs)
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
