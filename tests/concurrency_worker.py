"""Another PaxDesk user, as a separate process for the concurrency tests: edits records or runs a long
import on the database named on its command line, and reports what happened as JSON on stdout.

    python -m tests.concurrency_worker edit TARGET USER EDITS RECORD_IDS SEED START_FILE
    python -m tests.concurrency_worker import TARGET ROWS READY_AFTER
    python -m tests.concurrency_worker workbook-import TARGET ROWS FOLDER [PAUSE_SECONDS]
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path


def edit(target: str, user: str, edits: int, record_ids: list[int], seed: int, start_file: Path) -> None:
    """`edits` saves of one field, each naming the version read just before; every outcome is reported."""
    from models import schema
    from models.db import open_database
    from models.services import StaleRecord, WriteFailed, update_record

    os.environ["PAXDESK_USER"] = user
    open_database(target)
    rng = random.Random(seed)
    print(json.dumps({"ready": True}), flush=True)
    while not start_file.exists():  # all writers start together, so that they really overlap
        time.sleep(0.005)
    applied, refused, unexplained = [], [], []
    started = time.perf_counter()
    for number in range(edits):
        record_id = rng.choice(record_ids)
        value = f"{user} edit {number}"
        try:
            version = schema.Mission.select(schema.Mission.version).where(schema.Mission.id == record_id).scalar()
            update_record("missions", record_id, {"notes": value}, expected_version=version)
            applied.append([record_id, value])
        except (StaleRecord, WriteFailed) as exc:
            refused.append([record_id, value, type(exc).__name__, str(exc)])
        except Exception as exc:  # what the test must never see: a failure without a reason a person reads
            unexplained.append([record_id, value, f"{type(exc).__name__}: {exc}"])
    print(json.dumps({"applied": applied, "refused": refused, "unexplained": unexplained,
                      "seconds": time.perf_counter() - started}), flush=True)


def slow_import(target: str, rows: int, ready_after: int) -> int:
    """One import transaction of `rows` actors with aliases, slowed down once `ready_after` rows are written
    so that it can be killed while it is certainly open and writing."""
    from models.db import DatabaseUnavailable, open_database
    from models.services import RecordRefused, recording, save_record

    open_database(target)
    try:
        with recording("import", f"Import {rows} actors") as recorder:
            for number in range(rows):
                save_record("actors", {"name": f"Imported actor {number}", "kind": "ngo"},
                            links={"aliases": [{"alias": f"Imported alias {number}"}]}, recorder=recorder)
                if number == ready_after:
                    print(json.dumps({"ready": True}), flush=True)
                if number >= ready_after:
                    time.sleep(0.02)
    except (RecordRefused, DatabaseUnavailable) as exc:
        print(json.dumps({"refused": str(exc), "kind": type(exc).__name__}), flush=True)
        return 1
    print(json.dumps({"committed": rows}), flush=True)
    return 0


def workbook_import(target: str, rows: int, folder: Path, pause: float = 10.0) -> int:
    """A real import of a UN contributions workbook of `rows` figures (seeded database needed), paused for up
    to `pause` seconds after its first chunk is written, so that it can be killed inside its transaction."""
    import openpyxl

    from models import schema
    from models.db import open_database
    from models.importing import import_file
    from models.progress import Progress

    open_database(target)
    states = schema.Actor.select().where(schema.Actor.iso3.is_null(False)).order_by(schema.Actor.id)
    countries = [actor.iso3 for actor in states]
    missions = [m.acronym for m in schema.Mission.select().order_by(schema.Mission.id)]
    types = ["Troops", "Staff Officer", "Experts on Mission", "Individual Police", "Formed Police Units"]
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Contributing_Country", "ISOCode3", "Mission_Acronym", "Personnel_Type", "Female_Personnel",
                  "Male_Personnel", "Last_Reporting_Date"])
    keys = ((c, m, t) for c in countries for m in missions for t in types)
    for number, (country, mission, kind) in zip(range(rows), keys, strict=False):
        sheet.append(["", country, mission, kind, number % 7, number % 50 + 1, "30/04/2023"])
    path = folder / "contributions.xlsx"
    book.save(path)

    def report(done: int, total: int, message: str) -> None:
        if message.startswith("Writing") and 0 < done < total:
            print(json.dumps({"ready": True}), flush=True)
            for _ in range(int(pause * 10)):  # killed here, inside the import's transaction (or its connection is)
                time.sleep(0.1)
                schema.database.execute_sql("SELECT 1")

    _, result = import_file(path, progress=Progress(on_report=report))
    print(json.dumps(result.as_dict() if hasattr(result, "as_dict") else {"written": result.written},
                     default=str), flush=True)
    return 0 if result.written else 1


def main(argv: list[str]) -> int:
    command, target = argv[0], argv[1]
    if command == "edit":
        edit(target, argv[2], int(argv[3]), [int(i) for i in argv[4].split(",")], int(argv[5]), Path(argv[6]))
        return 0
    if command == "import":
        return slow_import(target, int(argv[2]), int(argv[3]))
    if command == "workbook-import":
        return workbook_import(target, int(argv[2]), Path(argv[3]), *map(float, argv[4:5]))
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
