"""The WHERE and ORDER BY of task queries, shaped for the inbox's indexes at hospital scale.

The inbox reads open tasks only (a few percent of the task rows once the finished ones pile
up), through partial indexes that hold just those rows with every column its views filter,
sort and count on (migration 0008):

* `ix_human_task_queue_due`, `ix_human_task_queue_priority`: a team's queue (open, unclaimed,
  by candidate role), in due order and in priority order;
* `ix_human_task_open_due`, `ix_human_task_open_priority`: every open or claimed task, likewise.

Two things make the databases use them. The statuses are written into the SQL as literals, so
the query states the indexes' own WHERE (SQLite matches it against the query's text, and a
PostgreSQL plan prepared for any parameter value cannot rely on a bound one). And on SQLite,
which has no statistics in a Casework database, the statement names its index (INDEXED BY):
left to itself SQLite takes the older, narrower (status, candidate_role, due_at) index for any
due-date filter and then reads every matching row of the table, a hundred times slower.

Due order is `due_at IS NULL, due_at`: tasks without a due time last, in an order an index can
hold on SQLite too (its indexes keep NULLs first, so NULLS LAST would need a sort of every row).
"""
from __future__ import annotations

from sqlalchemy import Select, Table, exists, false, literal_column, or_, select
from sqlalchemy.ext.compiler import compiles

from workflows.model import OPEN_TASK_STATUSES, TaskStatus
from workflows.ports import TaskQuery, TaskSort

from .. import tables as t

QUEUE_DUE, QUEUE_PRIORITY = "ix_human_task_queue_due", "ix_human_task_queue_priority"
OPEN_DUE, OPEN_PRIORITY = "ix_human_task_open_due", "ix_human_task_open_priority"
ASSIGNEE, CASE_SETTING = "ix_human_task_assignee_status", "ix_case_record_setting_id"
_OPEN = frozenset(OPEN_TASK_STATUSES)


@compiles(Table, "sqlite")
def _table_with_sqlite_hint(table, compiler, **kw):
    """Render `with_hint(table, "INDEXED BY ...", "sqlite")`, which SQLAlchemy's SQLite compiler drops."""
    text = compiler.visit_table(table, **kw)
    hint = (kw.get("fromhints") or {}).get(table)
    return f"{text} {hint}" if hint and not kw.get("ashint") else text


def status_is(column, statuses) -> object:
    """`status = 'open'` or `status IN ('open', 'claimed')`: literals, in TaskStatus order, as the indexes say it."""
    wanted = {TaskStatus(s) for s in statuses}
    values = [literal_column(f"'{status.value}'") for status in TaskStatus if status in wanted]
    if not values:
        return false()
    return column == values[0] if len(values) == 1 else column.in_(values)


def order(columns, sort: TaskSort | str) -> tuple:
    """The ORDER BY of an inbox sort, on the human_task columns or a subquery's copy of them."""
    by_due = (columns.due_at.is_(None), columns.due_at, columns.created_at, columns.id)
    return {
        TaskSort.DUE: by_due,
        TaskSort.PRIORITY: (columns.priority, *by_due),
        TaskSort.CREATED: (columns.created_at, columns.id),
    }[TaskSort(sort)]


def filtered(statement: Select, query: TaskQuery, *, sorted_by: TaskSort | None = None) -> Select:
    """Add the query's conditions to a statement on human_task, and on SQLite the index that serves them.

    `sorted_by`: the statement reads rows in that order (a page); otherwise it counts or groups.
    """
    columns, cases = t.human_task.c, t.case_record.c
    if query.case_id is not None:
        statement = statement.where(columns.case_id == query.case_id)
    if query.candidate_roles is not None:
        statement = statement.where(columns.candidate_role.in_(list(query.candidate_roles)))
    if query.assignee is not None:
        statement = statement.where(columns.assignee == query.assignee)
    if query.statuses is not None:
        statement = statement.where(status_is(columns.status, query.statuses))
    if query.unassigned_only:
        statement = statement.where(columns.assignee.is_(None))
    if query.priority is not None:
        statement = statement.where(columns.priority == query.priority)
    if query.due_from is not None or query.due_by is not None:
        # Implied by the range, and stated so that SQLite can seek the range in the due-order
        # indexes, which hold (due_at IS NULL) before due_at (PostgreSQL seeks it without).
        statement = statement.where(columns.due_at.is_(None) == false())
    if query.due_from is not None:
        statement = statement.where(columns.due_at >= query.due_from)
    if query.due_by is not None:
        statement = statement.where(columns.due_at <= query.due_by)
    if query.element_id is not None:
        statement = statement.where(columns.element_id == query.element_id)
    if query.viewer is not None:
        username, roles = query.viewer
        statement = statement.where(or_(columns.candidate_role.in_(list(roles)), columns.assignee == username,
                                        columns.completed_by == username))
    by_setting = []
    if query.settings is not None:
        by_setting.append(cases.setting.in_(list(query.settings)))
    if query.setting is not None:
        by_setting.append(cases.setting == query.setting)
    by_case = []
    if query.process_id is not None:
        by_case.append(cases.process_id == query.process_id)
    if query.text and query.text.strip():
        text = query.text.strip()
        matches = [cases.subject_name.icontains(text, autoescape=True),
                   cases.subject_ref.icontains(text, autoescape=True)]
        if query.case_number() is not None:
            matches.append(cases.id == query.case_number())
        by_case.append(or_(*matches))
    if by_case:
        # A list of the matching cases' ids, read from the case index (setting, process, subject),
        # never from the wide case rows: a search or a process matches few cases.
        statement = statement.where(columns.case_id.in_(select(cases.id).where(*by_setting, *by_case)))
    elif by_setting:
        # A setting holds a large share of all cases, closed ones included: look each task's
        # case up in the (setting, id) index instead of listing them all, on every statement.
        of_case = (select(cases.id).where(cases.id == columns.case_id, *by_setting)
                   .with_hint(t.case_record, f"INDEXED BY {CASE_SETTING}", "sqlite"))
        statement = statement.where(exists(of_case))
    index = _index_for(query, sorted_by)
    return statement.with_hint(t.human_task, f"INDEXED BY {index}", "sqlite") if index else statement


def _index_for(query: TaskQuery, sorted_by: TaskSort | None) -> str | None:
    """The partial index of open tasks that serves this query on SQLite, if one does."""
    if query.case_id is not None or query.viewer is not None or query.statuses is None:
        return None
    if query.assignee is not None:
        return ASSIGNEE  # a person's own tasks are few; a due-date filter must not pull in the open_due index
    statuses = {TaskStatus(s) for s in query.statuses}
    by_priority = sorted_by is not None and TaskSort(sorted_by) is TaskSort.PRIORITY
    if statuses == {TaskStatus.OPEN} and query.unassigned_only and query.candidate_roles:
        return QUEUE_PRIORITY if by_priority else QUEUE_DUE
    if statuses == _OPEN and not query.unassigned_only and query.candidate_roles is None:
        return OPEN_PRIORITY if by_priority else OPEN_DUE
    return None
