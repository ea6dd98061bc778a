"""The use cases: open a case, work its tasks, fire its timers, deliver its messages.

Each handler is one transaction: load, run the engine, write the new state and every
derived row, append the audit events, commit. When the engine fails, the transaction
rolls back and the failure is recorded as an incident in a transaction of its own.
"""
from .cases import CaseDetail, cancel_case, get_case, list_cases, resume_case, start_case, suspend_case
from .common import SCHEDULER, SUPERVISOR_ROLES
from .tasks import Inbox, claim_task, complete_task, get_task_form, inbox, list_tasks, unclaim_task
from .timers import fire_due_timers
from .waits import deliver_message

__all__ = [
    "CaseDetail", "Inbox", "SCHEDULER", "SUPERVISOR_ROLES", "cancel_case", "claim_task",
    "complete_task", "deliver_message", "fire_due_timers", "get_case", "get_task_form", "inbox", "list_cases",
    "list_tasks", "resume_case", "start_case", "suspend_case", "unclaim_task",
]
