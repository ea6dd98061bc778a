"""Operational metrics for Prometheus at GET /metrics: counts only, never case data, never public."""
from __future__ import annotations

import hmac
from collections import defaultdict

from flask import Blueprint, Response, current_app, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from workflows.accounts import user_for_token
from workflows.model import CaseStatus, TimerStatus
from workflows.ports import FlagQuery
from workflows.services import Services

from .persistence.repositories.metrics import SqlMetricsRepository

bp = Blueprint("metrics", __name__)

METRICS_ROLES = ("admin", "system")
# Spelt out rather than prometheus_client's CONTENT_TYPE_LATEST, which moved to 1.0.0 in later
# releases; every Prometheus server reads 0.0.4, and the output for these names is the same.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class CaseworkCollector(Collector):
    """Reads every gauge afresh at each scrape, in one short read-only unit of work."""

    def __init__(self, services: Services):
        self.services = services

    def collect(self):
        now = self.services.clock.now()
        with self.services.uow(read_only=True) as uow:
            counts = SqlMetricsRepository(uow.connection)
            settings = counts.settings()
            cases = counts.cases_by_status_and_setting()
            tasks = counts.open_tasks_by_setting_and_role(now)
            incidents = counts.open_incidents_by_setting()
            timers = counts.timers_by_status()
            oldest_due = counts.oldest_overdue_timer(now)
            flags = uow.flags.count_by_reason(FlagQuery())
        # Every known setting gets every series, so a count that falls to zero reads 0 rather than vanishing.
        settings = sorted(set(settings) | {setting for _, setting in cases})

        family = GaugeMetricFamily("casework_cases", "Cases by status and setting.", labels=["status", "setting"])
        for setting in settings:
            for status in CaseStatus:
                family.add_metric([status.value, setting], cases.get((status.value, setting), 0))
        yield family

        family = GaugeMetricFamily("casework_open_tasks", "Open or claimed human tasks by setting and candidate role.",
                                   labels=["setting", "candidate_role"])
        overdue: dict[str, int] = defaultdict(int)
        for (setting, role), number in sorted(tasks.items(), key=lambda item: (item[0][0], item[0][1] or "")):
            family.add_metric([setting, role or ""], number["open"])
            overdue[setting] += number["overdue"]
        yield family

        family = GaugeMetricFamily("casework_overdue_tasks", "Open or claimed human tasks past their due time, by setting.",
                                   labels=["setting"])
        for setting in sorted(set(settings) | set(overdue)):
            family.add_metric([setting], overdue[setting])
        yield family

        family = GaugeMetricFamily("casework_open_incidents", "Open incidents by setting.", labels=["setting"])
        for setting in sorted(set(settings) | set(incidents)):
            family.add_metric([setting], incidents.get(setting, 0))
        yield family

        family = GaugeMetricFamily("casework_stuck_cases", "Case flags raised by the stuck-case scan, by reason.",
                                   labels=["reason"])
        for reason, number in flags.items():
            family.add_metric([reason.value], number)
        yield family

        yield GaugeMetricFamily("casework_timers_pending", "Timers waiting to fire.",
                                value=timers[TimerStatus.PENDING.value])
        lag = max((now - oldest_due).total_seconds(), 0.0) if oldest_due is not None else 0.0
        yield GaugeMetricFamily("casework_timer_lag_seconds",
                                "Seconds since the longest-overdue pending timer of an active case fell due; "
                                "how far the scheduler is behind.", value=lag)
        yield GaugeMetricFamily("casework_timers_failed", "Timers that failed for good and need a person.",
                                value=timers[TimerStatus.FAILED.value])


@bp.record_once
def _bind_registry(state) -> None:
    # One registry per app, never the process-wide default: several apps share a test process.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CaseworkCollector(state.app.extensions["casework"]))
    state.app.extensions["metrics"] = registry


@bp.get("/metrics")
def metrics():
    if not _authorised(request.headers.get("Authorization", "")):
        response = Response(
            "Send a metrics token: 'Authorization: Bearer <token>' with CASEWORK_METRICS_TOKEN "
            "or the API token of an active admin or system user.\n",
            status=401, mimetype="text/plain")
        response.headers["WWW-Authenticate"] = 'Bearer realm="casework metrics"'
        return response
    return Response(generate_latest(current_app.extensions["metrics"]), content_type=CONTENT_TYPE)


def _authorised(header: str) -> bool:
    """Whether the header carries the metrics token or the API token of an admin or system user."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    expected = current_app.config.get("METRICS_TOKEN")
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return True
    user = user_for_token(current_app.extensions["casework"], token)
    return user is not None and any(user.has_role(role) for role in METRICS_ROLES)
