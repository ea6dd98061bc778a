"""The stuck-case list for managers: every flagged case with its reason and how long, filters, counts, CSV."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from flask import Response, current_app, flash, g, redirect, render_template, request, stream_with_context, url_for

from workflows import audit, handlers
from workflows.errors import InvalidInput
from workflows.model import FlaggedCase, FlagReason
from workflows.ports import FlagQuery, FlagSort

from . import bp
from .auth import safe_target
from .csv_export import csv_chunks, spreadsheet_safe
from .filters import query_args

PAGE_SIZE = 50
REASONS = {
    FlagReason.TASK_OVERDUE: "Overdue task",
    FlagReason.TASK_AT_RISK: "Task at risk",
    FlagReason.INCIDENT: "Failed step",
    FlagReason.STALLED: "Stalled",
    FlagReason.TIMER_OVERDUE: "Timer not fired",
    FlagReason.IDLE: "Idle",
}
SORTS = {FlagSort.SINCE: "Stuck longest", FlagSort.REASON: "Reason", FlagSort.SETTING: "Setting",
         FlagSort.CASE: "Case number"}


@dataclass(frozen=True)
class StuckFilters:
    reason: str = ""
    setting: str = ""
    process: str = ""
    assignee: str = ""
    sort: str = FlagSort.SINCE.value
    page: int = 1

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> StuckFilters:
        """Read the filters from a query string, refusing values the page does not offer."""
        problems: dict[str, list[str]] = {}
        reason = args.get("reason", "").strip()
        if reason and reason not in {r.value for r in FlagReason}:
            problems["reason"] = [f"Choose one of {', '.join(r.value for r in FlagReason)}."]
        sort = args.get("sort", "").strip() or FlagSort.SINCE.value
        if sort not in {s.value for s in FlagSort}:
            problems["sort"] = [f"Choose one of {', '.join(s.value for s in FlagSort)}."]
        page = args.get("page", "").strip() or "1"
        if not page.isdigit() or not 1 <= int(page) <= 100_000:
            problems["page"] = ["Give a page number from 1."]
        texts = {name: args.get(name, "").strip() for name in ("setting", "process", "assignee")}
        problems.update({name: ["Use at most 255 characters."] for name, value in texts.items() if len(value) > 255})
        if problems:
            raise InvalidInput("The stuck-case list cannot show that: " + " ".join(
                f"{name}: {' '.join(messages)}" for name, messages in problems.items()), problems)
        return cls(reason=reason, sort=sort, page=int(page), **texts)

    def query(self, *, limit: int = PAGE_SIZE) -> FlagQuery:
        return FlagQuery(
            reasons=[FlagReason(self.reason)] if self.reason else None,
            settings=[self.setting] if self.setting else None, process_id=self.process or None,
            assignee=self.assignee or None, sort=FlagSort(self.sort), limit=limit, offset=(self.page - 1) * limit,
        )

    def args(self, **changes) -> dict:
        return query_args(self, **changes)


@bp.get("/stuck")
def stuck():
    services = current_app.extensions["casework"]
    filters = StuckFilters.from_args(request.args)
    result = handlers.stuck_cases(services, actor=g.user, query=filters.query())
    people = handlers.reassign_candidates(services, actor=g.user, setting=filters.setting or None)
    return render_template("stuck.html", filters=filters, result=result, reasons=REASONS, sorts=SORTS,
                           now=services.clock.now(), pages=max(1, -(-result.total // PAGE_SIZE)), people=people)


@bp.post("/stuck/reassign")
def reassign():
    services = current_app.extensions["casework"]
    task_ids = [int(value) for value in request.form.getlist("task") if value.isdigit()]
    result = handlers.reassign_tasks(services, actor=g.user, task_ids=task_ids,
                                     assignee=request.form.get("assignee", ""))
    if result.assigned:
        count = len(result.assigned)
        flash(f"{count} task{'' if count == 1 else 's'} reassigned to {request.form.get('assignee')}.", "success")
    for task_id, reason in result.refused.items():
        flash(f"Task {task_id} was not reassigned: {reason}", "error")
    return redirect(safe_target(request.form.get("back")) if request.form.get("back") else url_for("web.stuck"), 303)


@bp.get("/stuck.csv")
def stuck_csv():
    services = current_app.extensions["casework"]
    filters = StuckFilters.from_args(request.args)
    rows = handlers.export_stuck_cases(services, actor=g.user, query=filters.query())
    rows = audit.recording_exports(services, rows, actor=g.user, what="stuck-case CSV",
                                   case_id_of=lambda row: row.flag.case_id)
    now = services.clock.now()
    return Response(stream_with_context(_csv(rows, now)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="stuck-cases-{now:%Y%m%d-%H%M}.csv"'})


CSV_COLUMNS = ("case", "subject", "reference", "setting", "process", "reason", "what", "element", "assignee",
               "role", "stuck_since", "stuck_hours", "first_found")


def _csv(rows: Iterator[FlaggedCase], now) -> Iterator[str]:
    return csv_chunks(CSV_COLUMNS, (
        [row.flag.case_id, spreadsheet_safe(row.subject_name), spreadsheet_safe(row.subject_ref), row.flag.setting,
         row.flag.process_id, REASONS[row.flag.reason], spreadsheet_safe(row.flag.detail), row.flag.element_id or "",
         row.flag.assignee or "", row.flag.candidate_role or "", row.flag.since.isoformat(),
         f"{(now - row.flag.since).total_seconds() / 3600:.1f}", row.flag.detected_at.isoformat()]
        for row in rows
    ))

