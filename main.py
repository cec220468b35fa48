"""PaxDesk's entry point: the GUI by default, sub-commands for headless work (seed, import, export)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

EXIT_DONE, EXIT_REFUSED, EXIT_UNUSABLE = 0, 1, 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse that exits 2 with one line, not a usage dump, on a bad argument."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_UNUSABLE, f"paxdesk: {message} (see --help)\n")


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH_OR_URL",
                        help="SQLite file or postgresql:// URL (default: $PAXDESK_DB, else the user data folder)")


def build_parser() -> ArgumentParser:
    from models import __version__

    parser = ArgumentParser(prog="paxdesk", description="Curate mediation and peacekeeping records.")
    parser.add_argument("--version", action="version", version=f"PaxDesk {__version__}")
    _add_db(parser)
    parser.add_argument("--screenshot", metavar="OUT.png", help="save a PNG of the main window and exit")
    parser.add_argument("--view", metavar="NAME", help="sidebar view to show, e.g. mediation-events")
    commands = parser.add_subparsers(dest="command", parser_class=ArgumentParser)

    seed = commands.add_parser("seed", help="create and seed a database")
    _add_db(seed)

    importer = commands.add_parser("import", help="import an Excel workbook")
    importer.add_argument("file", metavar="FILE.xlsx")
    _add_db(importer)
    importer.add_argument("--format", choices=("auto", "un", "paxdesk"), default="auto")
    importer.add_argument("--sheet", metavar="NAME")
    importer.add_argument("--mode", choices=("insert", "upsert"), default="upsert")
    importer.add_argument("--on-error", choices=("abort", "skip"), default="abort")
    importer.add_argument("--dry-run", action="store_true")
    importer.add_argument("--report", metavar="OUT.xlsx")
    importer.add_argument("--json", action="store_true")

    exporter = commands.add_parser("export", help="export an Excel workbook")
    exporter.add_argument("file", metavar="OUT.xlsx")
    _add_db(exporter)
    exporter.add_argument("--kind", choices=("data", "summary"), default="data")
    exporter.add_argument("--json", action="store_true")
    return parser


def database_target(args: argparse.Namespace) -> str:
    from models.db import default_database_path

    return args.db or os.environ.get("PAXDESK_DB") or str(default_database_path())


def open_seeded(target: str):
    """Open the database, seeding it when it holds no records yet (first run)."""
    from models import schema
    from models.db import open_database
    from models.seeding import seed_database

    db = open_database(target)
    if not schema.Actor.select().exists():
        seed_database()
    return db


def command_seed(args: argparse.Namespace) -> int:
    from models.db import describe_target, open_database
    from models.seeding import seed_database

    open_database(database_target(args))
    result = seed_database()
    print(f"Seeded {describe_target(database_target(args))}: {result.total} new records"
          + (f" ({', '.join(f'{k} {v}' for k, v in sorted(result.created.items()))})" if result.total else ""))
    return EXIT_DONE


def command_import(args: argparse.Namespace) -> int:
    """Import a workbook: 0 written (or a clean dry run), 1 rows refused, 2 unusable file, options or database."""
    import tempfile
    from pathlib import Path

    from models import schema
    from models.db import describe_target, is_url
    from models.import_report import write_error_report
    from models.import_target import open_import_database
    from models.importing import ImportOptions, ImportSource, WorkbookRefused, apply_plan, detect_format, stage_import

    options = ImportOptions(format=args.format, sheet=args.sheet, mode=args.mode, on_error=args.on_error,
                            dry_run=args.dry_run)
    target = database_target(args)
    if args.report and Path(args.report).suffix.lower() != ".xlsx":
        fail(f"the error report must be an .xlsx file, not {args.report}", args.json)
        return EXIT_UNUSABLE
    notes: list[str] = []
    try:
        with ImportSource(args.file) as source, tempfile.TemporaryDirectory(prefix="paxdesk-dry-run-") as scratch:
            options.check()
            # The file is judged before the database is touched: an unusable file creates no database.
            exists = is_url(target) or Path(target).expanduser().is_file()
            if exists:
                open_import_database(target, None, notes)
            kind = detect_format(source, options, saved_mappings=exists)
            if not exists or kind != "paxdesk":
                open_import_database(target, kind, notes, Path(scratch) if options.dry_run else None, exists)
            plan = stage_import(source, options)
            result = apply_plan(plan)
            schema.database.close()  # the scratch copy of a dry run goes with its folder
    except WorkbookRefused as exc:
        fail(str(exc), args.json)
        return EXIT_UNUSABLE
    result.notes[:0] = notes
    report = None
    if args.report and result.errors:
        report = write_error_report(plan, args.report, [result.failure] if result.failure else None)
    if args.json:
        data = result.as_dict()
        data["database"] = describe_target(target)
        data["report"] = str(report) if report else None
        print(json.dumps(data, ensure_ascii=False, default=str))
    else:
        for note in result.notes:
            print(note)
        print(result.summary())
        for error in result.errors[:20]:
            print(f"  {error}", file=sys.stderr)
        if len(result.errors) > 20:
            print(f"  … and {len(result.errors) - 20:,} more" + ("" if report else " (write them all with --report)"),
                  file=sys.stderr)
        if report:
            print(f"Rejected rows written to {report}: fix the marked cells and import that file again")
        elif args.report:
            print(f"No row was rejected, so no report was written to {args.report}")
    return EXIT_REFUSED if result.errors else EXIT_DONE


def command_export(args: argparse.Namespace) -> int:
    """Write a data or summary workbook; 1 when the data does not fit Excel, 2 for an unusable path or database."""
    from pathlib import Path

    from models.db import is_url, open_database
    from models.excel_write import ExportError, ExportRefused

    target = database_target(args)
    if not is_url(target) and not Path(target).expanduser().is_file():
        fail(f"there is no PaxDesk database at {target}", args.json)
        return EXIT_UNUSABLE
    open_database(target)
    try:
        if args.kind == "summary":
            from models.export_summary import export_summary

            result = export_summary(args.file)
        else:
            from models.export_data import export_data

            result = export_data(args.file)
    except ExportRefused as exc:
        fail(str(exc), args.json)
        return EXIT_REFUSED
    except ExportError as exc:
        fail(str(exc), args.json)
        return EXIT_UNUSABLE
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        counts = ", ".join(f"{sheet} {rows:,}" for sheet, rows in result.sheets.items())
        print(f"Exported the {args.kind} workbook to {result.path} ({counts})")
    return EXIT_DONE


def command_gui(args: argparse.Namespace) -> int:
    """Open the main window; with --screenshot, render it off-screen to a PNG and exit."""
    from models.records import RECORD_TYPES

    if args.view is not None and args.view not in RECORD_TYPES:
        fail(f"unknown view '{args.view}'; choose one of: {', '.join(RECORD_TYPES)}")
        return EXIT_UNUSABLE
    if args.screenshot:
        return _screenshot(args)
    target = database_target(args)
    open_seeded(target)
    from gui.app import create_application
    from gui.main_window import MainWindow

    app = create_application(sys.argv[:1])
    window = MainWindow(target)
    if args.view:
        window.show_view(args.view)
    window.show()
    return app.exec()


def _screenshot(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    out = Path(args.screenshot).expanduser()
    if not out.parent.is_dir():
        fail(f"cannot write {out}: the folder {out.parent} does not exist")
        return EXIT_UNUSABLE
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before the QApplication exists
    target = database_target(args)
    open_seeded(target)
    from PySide6.QtCore import QCoreApplication, QSettings, qInstallMessageHandler

    from gui.app import create_application
    from gui.main_window import DEFAULT_SIZE, DEFAULT_VIEW, MainWindow

    create_application(sys.argv[:1])
    # The off-screen platform notes that it cannot size native windows; nothing a user need read.
    previous_handler = qInstallMessageHandler(
        lambda _kind, _context, message: None if "propagateSizeHints" in message else print(message, file=sys.stderr))
    # A throw-away settings file: the picture shows the default layout, and the user's layout is untouched.
    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(target, settings=QSettings(str(Path(folder) / "screenshot.ini"),
                                                       QSettings.Format.IniFormat))
        try:
            window.resize(*DEFAULT_SIZE)
            window.show_view(args.view or DEFAULT_VIEW)
            window.select_first_row()
            window.show()
            window.model.wait_until_loaded()
            for _ in range(3):  # layout, then paint
                QCoreApplication.processEvents()
            saved = window.grab().save(str(out), "PNG")
        finally:
            window.close()
            window.deleteLater()
            QCoreApplication.processEvents()
            qInstallMessageHandler(previous_handler)
    if not saved:
        fail(f"cannot write {out}")
        return EXIT_UNUSABLE
    print(f"Saved {out}")
    return EXIT_DONE


def fail(message: str, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps({"ok": False, "error": message}, ensure_ascii=False))
    else:
        print(f"paxdesk: {message}", file=sys.stderr)


COMMANDS: dict[str | None, Callable[[argparse.Namespace], int]] = {
    None: command_gui,
    "seed": command_seed,
    "import": command_import,
    "export": command_export,
}


def main(argv: list[str] | None = None) -> int:
    from models.db import DatabaseUnavailable
    from models.seeding import SeedError

    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (DatabaseUnavailable, SeedError) as exc:
        fail(str(exc), getattr(args, "json", False))
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        fail("interrupted")
        return EXIT_UNUSABLE
    except BrokenPipeError:
        # The reader of the output went away (`paxdesk import … --json | head`): the work is done, only its report
        # is lost. Pointing stdout at nothing keeps Python's flush at exit from printing a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        fail("the output was closed before all of it was written")
        return EXIT_UNUSABLE


if __name__ == "__main__":
    sys.exit(main())
