"""The summary workbook: one styled, printable sheet per summary, each with a native Excel chart.

The figures come from models.summaries (SQL aggregations); this module only lays them out. The workbook
is small whatever the database size, so openpyxl's normal mode is used for its styling and charts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import BarChart, LineChart, Reference
from openpyxl.worksheet.worksheet import Worksheet

from models import summaries
from models.excel_write import (
    BOLD,
    COUNT_FORMAT,
    PERCENT_FORMAT,
    WRAP,
    ExportResult,
    atomic_target,
    export_metadata,
    print_setup,
    put,
    set_widths,
    title_block,
    write_table,
)
from models.progress import NO_PROGRESS, Progress
from models.summaries import SummaryFilters

CHART_ROWS = 20  # a bar chart of more contributors than this is unreadable; the table holds them all
NOTE_SEX = "Female and Male are blank where a source gives only a total (unknown, not zero); totals sum Total."


def _bar_chart(title: str, y_title: str, *, horizontal: bool = False, stacked: bool = False) -> BarChart:
    chart = BarChart()
    chart.type = "bar" if horizontal else "col"
    chart.title = title
    chart.y_axis.title = y_title
    chart.width, chart.height = 22, 12
    if stacked:
        chart.grouping = "stacked"
        chart.overlap = 100
    # openpyxl ≥3.1 hides axes unless told otherwise; a reader needs the scale.
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    return chart


# --- Sheets ----------------------------------------------------------------------------------------

def personnel_sheet(ws: Worksheet, filters: SummaryFilters) -> int:
    matrix = summaries.personnel_matrix(filters)
    as_of = matrix.as_of.isoformat() if matrix.as_of else "no reporting date (no contributions)"
    top = title_block(ws, "Uniformed personnel by contributor and mission", [
        "Units: persons", f"As of reporting date {as_of}", NOTE_SEX,
        f"'{summaries.UNNAMED}' holds figures whose source names no mission.",
    ])
    headers = ["Contributor", *[label for _, label in matrix.missions], "Female", "Male", "Total"]
    rows = []
    for contributor, name in matrix.contributors:
        counts = matrix.by_contributor[contributor]
        rows.append([name, *[matrix.cells.get((contributor, m)) for m, _ in matrix.missions],
                     counts.female, counts.male, counts.total])
    rows.append(["Total", *[matrix.by_mission[m] for m, _ in matrix.missions],
                 matrix.grand.female, matrix.grand.male, matrix.grand.total])
    first, last = write_table(ws, top, headers, rows, total_row=True)
    ws.freeze_panes = ws.cell(row=top + 1, column=2)
    print_setup(ws, top)

    type_top = last + 3
    put(ws, type_top - 1, 1, f"By personnel type, as of {as_of}").font = BOLD
    type_rows = [[name, *[matrix.type_cells.get((contributor, t)) for t in matrix.types],
                  matrix.by_contributor[contributor].total] for contributor, name in matrix.contributors]
    type_rows.append(["Total", *[matrix.by_type[t] for t in matrix.types], matrix.grand.total])
    _, type_last = write_table(ws, type_top, ["Contributor", *matrix.types, "Total"], type_rows, total_row=True)

    if matrix.contributors:
        chart = _bar_chart(f"Personnel by contributor and mission, {as_of}", "Persons", horizontal=True, stacked=True)
        shown = min(len(matrix.contributors), CHART_ROWS)
        data = Reference(ws, min_col=2, max_col=1 + len(matrix.missions), min_row=top, max_row=top + shown)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=first, max_row=top + shown))
        chart.x_axis.scaling.orientation = "maxMin"  # largest contributor at the top, as in the table
        chart.height = max(8, 1 + 0.6 * shown)
        ws.add_chart(chart, f"A{type_last + 3}")
    set_widths(ws, {1: 28, **{c: 11 for c in range(2, len(headers) + 1)}})
    return len(matrix.contributors)


def over_time_sheet(ws: Worksheet, filters: SummaryFilters) -> int:
    series = summaries.personnel_over_time(filters)
    scope = ", ".join(n for _, n in series.series) or "no contributors"
    missions = ", ".join(summaries.mission_names(filters.missions)) or "all missions"
    top = title_block(ws, "Uniformed personnel over time", [
        "Units: persons, on the last reporting date of each month",
        f"Contributors: {scope}", f"Missions: {missions}",
        "Without chosen contributors, the five largest on the reporting date are shown.",
    ])
    headers = ["Month", "Reporting date", *[name for _, name in series.series]]
    rows = [[month, series.dates[month], *[series.values.get((month, c)) for c, _ in series.series]]
            for month in series.months]
    write_table(ws, top, headers, rows)
    ws.freeze_panes = ws.cell(row=top + 1, column=3)
    print_setup(ws, top)
    if rows:
        chart = LineChart()
        chart.title = "Personnel over time"
        chart.y_axis.title, chart.x_axis.title = "Persons", "Month"
        chart.width, chart.height = 24, 12
        chart.x_axis.delete = chart.y_axis.delete = False
        chart.add_data(Reference(ws, min_col=3, max_col=2 + len(series.series), min_row=top,
                                 max_row=top + len(rows)), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=top + 1, max_row=top + len(rows)))
        ws.add_chart(chart, ws.cell(row=top, column=len(headers) + 2).coordinate)
    set_widths(ws, {1: 10, 2: 14, **{c: 16 for c in range(3, len(headers) + 1)}})
    return len(rows)


def mediation_sheet(ws: Worksheet, filters: SummaryFilters) -> int:
    hosts, years, counts = summaries.events_by_host_year()
    top = title_block(ws, "Mediation events by host country and year", [
        "Units: events (rounds of talks, summits, meetings)",
        "Year: the year the event started; an approximate date ('around 2017') counts in its year.",
    ])
    rows = [[host, *[counts.get((host, y), 0) for y in years], sum(counts.get((host, y), 0) for y in years)]
            for host in hosts]
    rows.append(["Total", *[sum(counts.get((h, y), 0) for h in hosts) for y in years], sum(counts.values())])
    _, last = write_table(ws, top, ["Host country", *years, "Total"], rows, total_row=True)
    print_setup(ws, top)
    if hosts:
        chart = _bar_chart("Mediation events by year and host country", "Events", stacked=True)
        chart.add_data(Reference(ws, min_col=1, max_col=1 + len(years), min_row=top + 1, max_row=top + len(hosts)),
                       from_rows=True, titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=2, max_col=1 + len(years), min_row=top, max_row=top))
        ws.add_chart(chart, ws.cell(row=top, column=len(years) + 4).coordinate)

    process_top = max(last + 3, top + 26 if hosts else 0)
    put(ws, process_top - 1, 1, "By peace process").font = BOLD
    processes = summaries.events_by_process()
    _, last = write_table(ws, process_top, ["Peace process", "Events", "First", "Last"], [list(p) for p in processes])

    events_top = last + 3
    put(ws, events_top - 1, 1, "Events with their parties and outcomes").font = BOLD
    events = summaries.event_rows()
    write_table(ws, events_top, ["Peace process", "Event", "Date", "Host country", "City", "Parties",
                                 "Hosts, mediators, guarantors", "Outcome category", "Outcome"],
                [[e.process, e.title, e.date, e.host, e.city, e.parties, e.hosts_and_mediators, e.outcome_category,
                  e.outcome] for e in events], wrap_columns=(1, 5, 6, 8))
    set_widths(ws, {1: 30, 2: 36, 3: 22, 4: 16, 5: 12, 6: 26, 7: 34, 8: 22, 9: 50})
    return len(events)


def agreements_sheet(ws: Worksheet, filters: SummaryFilters) -> int:
    stages, statuses, counts = summaries.agreements_by_stage_status()
    top = title_block(ws, "Agreements by PA-X stage and status", [
        "Units: agreements",
        "Stages follow the PA-X Peace Agreements Database; agreements not yet coded are counted apart.",
    ])
    rows = [[stage, *[counts.get((stage, s), 0) for s in statuses], sum(counts.get((stage, s), 0) for s in statuses)]
            for stage in stages]
    rows.append(["Total", *[sum(counts.get((g, s), 0) for g in stages) for s in statuses], sum(counts.values())])
    _, last = write_table(ws, top, ["PA-X stage", *statuses, "Total"], rows, total_row=True)
    print_setup(ws, top)
    if stages:
        chart = _bar_chart("Agreements by PA-X stage and status", "Agreements", stacked=True)
        chart.add_data(Reference(ws, min_col=2, max_col=1 + len(statuses), min_row=top, max_row=top + len(stages)),
                       titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=top + 1, max_row=top + len(stages)))
        ws.add_chart(chart, ws.cell(row=top, column=len(statuses) + 4).coordinate)
    list_top = max(last + 3, top + 26 if stages else 0)
    put(ws, list_top - 1, 1, "Agreements").font = BOLD
    agreements = summaries.agreement_rows()
    write_table(ws, list_top, ["Title", "Peace process", "Status", "Date", "PA-X stage", "Parties"],
                [list(a) for a in agreements], wrap_columns=(0, 1, 5))
    set_widths(ws, {1: 50, 2: 30, 3: 12, 4: 12, 5: 14, 6: 30, 7: 12})
    return len(agreements)


def authorisations_sheet(ws: Worksheet, filters: SummaryFilters) -> int:
    rows = summaries.authorisations_vs_deployed(filters)
    top = title_block(ws, "Authorised ceilings against personnel deployed", [
        "Units: persons", summaries.DEPLOYED_RULE,
        "Share of ceiling = in covered missions ÷ ceiling.",
    ])
    ws.row_dimensions[3].height = 45
    ws.merge_cells(start_row=3, start_column=1, end_row=3, end_column=13)
    ws.cell(row=3, column=1).alignment = WRAP
    headers = ["Country", "Date", "Authorising body", "Instrument", "Missions covered", "Ceiling", "Reporting date",
               "In covered missions", "In other named missions", "Mission not named", "Covered, at most",
               "All missions", "Share of ceiling"]
    values = [[r.country, r.date, r.body, r.instrument, r.covered, r.ceiling, r.reporting_date, r.in_covered,
               r.in_other_named, r.not_named, r.at_most_covered, r.all_missions, r.share_of_ceiling] for r in rows]
    first, last = write_table(ws, top, headers, values, wrap_columns=(2, 3, 4))
    for row in range(first, last + 1):
        ws.cell(row=row, column=13).number_format = PERCENT_FORMAT
    print_setup(ws, top)
    if rows:
        chart = _bar_chart("Ceiling against personnel deployed", "Persons")
        for column in (6, 8, 12):
            chart.add_data(Reference(ws, min_col=column, min_row=top, max_row=last), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, max_col=2, min_row=first, max_row=last))
        ws.add_chart(chart, f"A{last + 3}")
    set_widths(ws, {1: 16, 2: 16, 3: 30, 4: 30, 5: 22, 6: 10, 7: 14, **{c: 12 for c in range(8, 14)}})
    return len(rows)


SUMMARIES: dict[str, tuple[str, Callable[[Worksheet, SummaryFilters], int]]] = {
    "personnel": ("Personnel", personnel_sheet),
    "over-time": ("Personnel over time", over_time_sheet),
    "mediation": ("Mediation events", mediation_sheet),
    "agreements": ("Agreements", agreements_sheet),
    "authorisations": ("Authorisations", authorisations_sheet),
}


def export_summary(path: Path | str, filters: SummaryFilters | None = None, which: tuple[str, ...] | None = None,
                   progress: Progress = NO_PROGRESS) -> ExportResult:
    """Write the summary workbook to `path` (atomically) and say how many rows each sheet holds."""
    filters = filters or SummaryFilters()
    chosen = [key for key in SUMMARIES if which is None or key in which]
    unknown = set(which or ()) - set(SUMMARIES)
    if unknown:
        raise ValueError(f"Unknown summaries {sorted(unknown)}; choose from {', '.join(SUMMARIES)}")
    result = ExportResult(Path(path), "summary")
    with atomic_target(Path(path)) as temp:
        result.path = Path(path).expanduser().absolute()
        workbook = Workbook()
        about = workbook.active
        about.title = "About"
        for index, key in enumerate(chosen):
            progress.report(index, len(chosen) + 1, f"Summarising {SUMMARIES[key][0].lower()}…")
            title, build = SUMMARIES[key]
            result.sheets[title] = build(workbook.create_sheet(title), filters)
        _about_sheet(about, filters, chosen)
        progress.report(len(chosen), len(chosen) + 1, "Saving the workbook…")
        workbook.save(temp)
    progress.report(len(chosen) + 1, len(chosen) + 1, "Done")
    return result


def _about_sheet(ws: Worksheet, filters: SummaryFilters, chosen: list[str]) -> None:
    top = title_block(ws, "PaxDesk summary", ["Figures computed by the database at the time of export."])
    rows = [list(item) for item in export_metadata("summary", filters.describe())]
    rows.append(["Sheets", ", ".join(SUMMARIES[key][0] for key in chosen)])
    write_table(ws, top, ["Item", "Value"], rows)
    set_widths(ws, {1: 20, 2: 90})
    print_setup(ws, top)


__all__ = ["SUMMARIES", "export_summary", "COUNT_FORMAT"]
