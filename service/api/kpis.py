"""The KPI report as JSON: the same figures as the KPI page and its CSV."""
from __future__ import annotations

from flask import current_app, g, request

from workflows import handlers

from . import bp
from .docs import documented
from .kpi_schemas import KpiQuery, KpiReportOut
from .schemas import one


@documented(bp, "/kpis", "GET", "KPIs per setting over a period of days, with how each is counted (supervisors)",
            query=KpiQuery, response=KpiReportOut, errors=(400, 403))
def kpi_report():
    args = one(KpiQuery).load(request.args.to_dict())
    report = handlers.kpi_report(current_app.extensions["casework"], actor=g.user, first=args.get("first", ""),
                                 last=args.get("last", ""), setting=args.get("setting", ""))
    return one(KpiReportOut).dump(report)
