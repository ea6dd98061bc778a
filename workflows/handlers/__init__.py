"""The use cases: open a case, work its tasks, fire its timers, deliver its messages.

Each handler is one transaction: load, run the engine, write the new state and every
derived row, append the audit events, commit. When the engine fails, the transaction
rolls back and the failure is recorded as an incident in a transaction of its own.
"""
from .adhoc import ADHOC_FORM, ADHOC_UI, add_adhoc_task, add_note, adhoc_choices
from .cases import CaseDetail, cancel_case, get_case, list_cases, resume_case, start_case, suspend_case
from .common import SCHEDULER, SUPERVISOR_ROLES
from .diagrams import CaseDiagram, case_diagram, case_diagram_xml
from .kpis import KpiReport, SettingKpis, kpi_report
from .process_view import (
    ElementCases,
    ProcessSummary,
    ProcessView,
    element_cases,
    list_processes,
    process_diagram_xml,
    process_view,
)
from .repair import Moved, TokenChoice, close_incident, move_token, retry_incident, token_choices
from .tasks import (
    Inbox,
    TaskDetail,
    assign_task,
    claim_task,
    complete_task,
    eligible_assignees,
    get_task,
    inbox,
    list_tasks,
    next_task,
    save_draft,
    unclaim_task,
)
from .stuck import Reassigned, StuckCases, export_stuck_cases, reassign_candidates, reassign_tasks, stuck_cases
from .timers import fire_due_timers
from .waits import deliver_message

__all__ = [
    "ADHOC_FORM", "ADHOC_UI", "CaseDetail", "CaseDiagram", "Inbox", "Reassigned", "SCHEDULER",
    "SUPERVISOR_ROLES", "StuckCases", "TaskDetail", "add_adhoc_task", "add_note", "adhoc_choices",
    "assign_task", "cancel_case", "case_diagram", "case_diagram_xml", "claim_task", "complete_task", "deliver_message",
    "eligible_assignees", "export_stuck_cases", "fire_due_timers", "get_case", "get_task", "inbox",
    "list_cases", "list_tasks", "next_task", "reassign_candidates", "reassign_tasks", "resume_case",
    "save_draft", "start_case", "stuck_cases", "suspend_case", "unclaim_task",
    "KpiReport", "SettingKpis", "kpi_report",
    "Moved", "TokenChoice", "close_incident", "move_token", "retry_incident", "token_choices",
    "ElementCases", "ProcessSummary", "ProcessView", "element_cases", "list_processes", "process_diagram_xml",
    "process_view",
]
