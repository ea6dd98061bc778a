"""KPIs every setting has: how long each task type takes, and each team member's overdue tasks."""
from __future__ import annotations

from datetime import timedelta

from .base import Figure, Kpi, SettingFacts, TaskFacts, average, count, grouped, middle, share

ALL_TASKS = "All tasks"
TEAM = "Whole team"


def kpis(facts: SettingFacts) -> list[Kpi]:
    """Compute the task KPIs of one setting over the period."""
    return [completion_time(facts.tasks), overdue_by_member(facts.tasks, facts.open_overdue)]


def completion_time(tasks: list[TaskFacts]) -> Kpi:
    """Hours from a task becoming ready to its completion, per task type and for all tasks."""
    labels = {task.element_id: _type_label(task) for task in sorted(tasks, key=lambda task: task.completed_at)}
    hours = grouped((labels[task.element_id], (task.completed_at - task.created_at) / timedelta(hours=1))
                    for task in tasks)
    groups = {ALL_TASKS: [value for values in hours.values() for value in values], **dict(sorted(hours.items()))}
    figures = []
    for group, values in groups.items():
        figures += [count(group, "Tasks", len(values), "tasks"), average(group, "Mean hours", values, "hours"),
                    middle(group, "Median hours", values, "hours")]
    return Kpi("completion_time", "Task completion time by task type",
               "Tasks completed in the period, by task type: hours from the task appearing in the inbox to its "
               "completion. Ad-hoc tasks count as one type.", len(tasks), figures if tasks else [],
               chart="Median hours", unit="tasks", total=ALL_TASKS, empty="No tasks completed in this period")


def overdue_by_member(tasks: list[TaskFacts], open_overdue: dict[str, int]) -> Kpi:
    """Per team member: tasks they completed after the due time in the period, and open tasks of theirs overdue."""
    timed = [task for task in tasks if task.due_at is not None and task.completed_by]
    late = grouped((task.completed_by, task.completed_at > task.due_at) for task in timed)
    people = sorted(set(late) | set(open_overdue))
    rows = [(TEAM, [task.completed_at > task.due_at for task in timed], sum(open_overdue.values()))]
    rows += [(person, late.get(person, []), open_overdue.get(person, 0)) for person in people]
    figures: list[Figure] = []
    for person, verdicts, still_open in rows:
        figures += [count(person, "Overdue tasks", sum(verdicts) + still_open, "tasks"),
                    share(person, "Completed late", sum(verdicts), len(verdicts)),
                    count(person, "Open and overdue", still_open, "tasks")]
    return Kpi("overdue_by_member", "Overdue tasks per team member",
               "Completed late: of the tasks with a due time that the person completed in the period, the share "
               "they completed after that due time. Open and overdue: tasks assigned to them that are still open "
               "and fell due before the period ended (or before now, if it has not). Overdue tasks: the tasks "
               "completed late plus the open and overdue ones.", len(timed) + sum(open_overdue.values()),
               figures if people else [], chart="Overdue tasks", unit="tasks", total=TEAM,
               empty="No tasks with a due time in this period")


def _type_label(task: TaskFacts) -> str:
    return "Ad-hoc tasks" if task.adhoc else task.title or task.element_id
