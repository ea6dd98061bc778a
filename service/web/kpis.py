"""The managers' KPI page and its CSV: per setting, over a period of days, charts with tables under them."""
from __future__ import annotations

from collections.abc import Iterator

from flask import Response, current_app, g, render_template, request

from workflows import handlers
from workflows.handlers import KpiReport

from . import bp, kpi_charts  # noqa: F401  (kpi_charts: the chart and cell template globals)
from .csv_export import csv_chunks, spreadsheet_safe

CSV_COLUMNS = ("setting", "kpi", "measure", "group", "value", "unit", "numerator", "denominator")


@bp.get("/kpis")
def kpis():
    report = _report()
    return render_template("kpis.html", report=report, filters=_filters(report))


@bp.get("/kpis.csv")
def kpis_csv():
    report = _report()
    period = report.period
    return Response(_csv(report), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="kpis-{period.first_day}-to-{period.last_day}.csv"'})


def _report() -> KpiReport:
    return handlers.kpi_report(current_app.extensions["casework"], actor=g.user, first=request.args.get("from", ""),
                               last=request.args.get("to", ""), setting=request.args.get("setting", ""))


def _filters(report: KpiReport) -> dict[str, str]:
    """The page's choices as a query string: the period shown, and the setting if one was chosen."""
    chosen = request.args.get("setting", "").strip()
    return {"from": report.period.first_day.isoformat(), "to": report.period.last_day.isoformat(),
            **({"setting": chosen} if chosen else {})}


def _csv(report: KpiReport) -> Iterator[str]:
    return csv_chunks(CSV_COLUMNS, (
        [shown.setting, kpi.key, figure.measure, spreadsheet_safe(figure.group), _plain(figure.value), figure.unit,
         _plain(figure.numerator), _plain(figure.denominator)]
        for shown in report.settings for kpi in shown.kpis for figure in kpi.figures
    ))


def _plain(value: float | None) -> str:
    return "" if value is None else str(round(value, 4))
