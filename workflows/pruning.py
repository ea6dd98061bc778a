"""Drop finished history from a workflow's task tree between actions.

SpiffWorkflow grows the task tree by one branch of tasks per loop iteration, and many
of its internals walk the tree with a depth limit of 1,000 (`TaskIterator`): a daily
review loop stalls silently after about 250 iterations, and stepping, serialising and
deserialising cost more with every iteration. Between actions, finished history is
not needed to run the case: the audit trail is in `case_event`. So after each action:

- a finished subtree hanging off the finished trunk is removed (cancelled boundary
  events, finished parallel branches);
- a finished task in the trunk with a single finished child is spliced out, its child
  taking its place.

What is kept, because SpiffWorkflow reads it: every unfinished task and everything
below an unfinished task (multi-instance and loop tasks track their children), the
parent of every unfinished task (joins read the parent's data), the workflow root and
its direct children, and any split a structured join still has to find. While a join
waits for more branches, the earlier arrivals SpiffWorkflow has cancelled are kept too,
with their parents: the join counts them, and merges their data when it fires.
"""
from __future__ import annotations

from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.util.task import TaskState


def prune_history(workflow) -> int:
    """Remove finished history from the workflow and its active subprocesses; return tasks removed."""
    removed = _prune_tree(workflow, workflow)
    for subprocess in list(workflow.subprocesses.values()):
        if not subprocess.completed and subprocess in workflow.subprocesses.values():
            removed += _prune_tree(workflow, subprocess)
    return removed


def _is_finished(task) -> bool:
    return task.has_state(TaskState.FINISHED_MASK)


def _prune_tree(top, wf) -> int:
    tasks = wf.tasks
    root = wf.task_tree
    unfinished = [task for task in tasks.values() if not _is_finished(task)]
    if not unfinished:
        return 0

    waiting_joins = {task.task_spec for task in unfinished if isinstance(task.task_spec, Join)}
    earlier_arrivals = [task for task in tasks.values()
                        if task.task_spec in waiting_joins and _is_finished(task)]
    kept_arrivals = {task.id for task in earlier_arrivals}
    live = set()
    for task in unfinished + earlier_arrivals:
        node = task
        while node is not None and node.id not in live:
            live.add(node.id)
            node = node.parent

    split_names = {
        ts.split_task for ts in wf.spec.task_specs.values() if getattr(ts, "split_task", None)
    }
    trunk = _finished_trunk(root)
    removed = 0

    for task in trunk:
        if task.id not in tasks:
            continue
        children = task.children
        if task.task_spec.name in split_names and not all(_is_finished(c) for c in children):
            continue
        for child in children:
            if child.id not in live:
                removed += _remove_subtree(top, wf, task, child)

    for task in trunk:
        if task is root or task.parent is root or task.id not in tasks:
            continue
        children = task.children
        if len(children) != 1 or not _is_finished(children[0]) or children[0].id in kept_arrivals:
            continue
        _splice(top, wf, task, children[0])
        removed += 1

    if wf.last_task is not None and wf.last_task.id not in tasks:
        wf.last_task = None
    return removed


def _finished_trunk(root) -> list:
    """Return the finished tasks with no unfinished ancestor, parents before children."""
    trunk, stack = [], [root]
    while stack:
        task = stack.pop()
        if not _is_finished(task):
            continue
        trunk.append(task)
        stack.extend(reversed(task.children))
    return trunk


def _remove_subtree(top, wf, parent, task) -> int:
    doomed, stack = [], [task]
    while stack:
        node = stack.pop()
        doomed.append(node)
        stack.extend(node.children)
    for node in doomed:
        _drop_subprocess(top, node)
        del wf.tasks[node.id]
    parent._children = [cid for cid in parent._children if cid != task.id]
    return len(doomed)


def _splice(top, wf, task, child) -> None:
    parent = task.parent
    parent._children = [child.id if cid == task.id else cid for cid in parent._children]
    child._parent = parent.id
    _drop_subprocess(top, task)
    del wf.tasks[task.id]


def _drop_subprocess(top, task) -> None:
    if task.id in top.subprocesses:
        top.delete_subprocess(task)
