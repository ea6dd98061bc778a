"""In-memory fakes of the core's ports, for unit tests of `workflows/` only."""
from __future__ import annotations

import copy
import dataclasses
from datetime import datetime, timedelta, timezone

from workflows.errors import StaleCase
from workflows.model import (
    OPEN_TASK_STATUSES,
    CaseFlag,
    CaseStatus,
    FlagReason,
    IncidentStatus,
    TaskInCase,
    TimerStatus,
)
from workflows.ports import FlagChanges, FlagQuery, TaskQuery, TaskSort


class FakeClock:
    def __init__(self, now: datetime | None = None):
        self.current = now or datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta) -> datetime:
        self.current += timedelta(**delta)
        return self.current


class _Table:
    def __init__(self):
        self.rows: dict[int, object] = {}
        self.next_id = 1

    def insert(self, record):
        record.id = self.next_id
        self.next_id += 1
        self.rows[record.id] = copy.deepcopy(record)
        return record


class FakeStore:
    """The committed state shared by every unit of work."""

    def __init__(self):
        self.tables = {name: _Table() for name in ("processes", "cases", "tasks", "timers", "messages", "events", "notes", "incidents", "users", "flags", "marks")}
        self.tables["reads"] = _Table()
        self.tables["tokens"] = _Table()


class _Repo:
    def __init__(self, table: _Table):
        self.table = table

    def add(self, record):
        return self.table.insert(record)

    def get(self, record_id):
        row = self.table.rows.get(record_id)
        return copy.deepcopy(row) if row is not None else None

    def update(self, record):
        self.table.rows[record.id] = copy.deepcopy(record)

    def _all(self):
        return [copy.deepcopy(row) for row in self.table.rows.values()]


class FakeProcesses(_Repo):
    def latest(self, process_id):
        versions = [v for v in self._all() if v.process_id == process_id]
        return max(versions, key=lambda v: v.version) if versions else None

    def list(self, *, process_id=None):
        return [v for v in self._all() if process_id in (None, v.process_id)]

    def settings_by_process(self):
        return {v.process_id: v.setting for v in sorted(self._all(), key=lambda v: (v.process_id, v.version))}

    def was_deployed(self, process_id, content_hash):
        return any(v.process_id == process_id and v.content_hash == content_hash for v in self._all())


class FakeCases(_Repo):
    def save(self, case):
        stored = self.table.rows[case.id]
        if stored.version != case.version:
            raise StaleCase(f"Case {case.id} was changed by someone else; reload it and try again.")
        case.version += 1
        self.table.rows[case.id] = copy.deepcopy(case)

    def list(self, *, status=None, process_id=None, limit=50, offset=0, settings=None):
        cases = [c for c in self._all() if status in (None, c.status) and process_id in (None, c.process_id)
                 and (settings is None or c.setting in settings)]
        return sorted(cases, key=lambda c: -c.id)[offset:offset + limit]


class FakeTasks(_Repo):
    def with_case(self, task_id):
        task = self.get(task_id)
        return (task, copy.deepcopy(self.cases.rows[task.case_id])) if task is not None else None

    def for_case(self, case_id, *, open_only=True):
        return [t for t in self._all() if t.case_id == case_id and (not open_only or t.status in OPEN_TASK_STATUSES)]

    def _match(self, query: TaskQuery):
        cases = self.cases.rows
        text = (query.text or "").strip().lower()

        def case_matches(task):
            case = cases[task.case_id]
            return (
                query.setting in (None, case.setting) and query.process_id in (None, case.process_id)
                and (query.settings is None or case.setting in query.settings)
                and (not text or text in case.subject_name.lower() or text in case.subject_ref.lower()
                     or task.case_id == query.case_number())
            )

        tasks = [
            t for t in self._all()
            if query.case_id in (None, t.case_id)
            and (query.candidate_roles is None or t.candidate_role in query.candidate_roles)
            and query.assignee in (None, t.assignee)
            and (query.statuses is None or t.status in query.statuses)
            and (not query.unassigned_only or t.assignee is None)
            and query.priority in (None, t.priority)
            and query.element_id in (None, t.element_id)
            and (query.viewer is None or t.candidate_role in query.viewer[1]
                 or query.viewer[0] in (t.assignee, t.completed_by))
            and (query.due_from is None or (t.due_at is not None and t.due_at >= query.due_from))
            and (query.due_by is None or (t.due_at is not None and t.due_at <= query.due_by))
            and case_matches(t)
        ]
        by_due = lambda t: (t.due_at is None, t.due_at or t.created_at, t.created_at, t.id)  # noqa: E731
        orders = {
            TaskSort.DUE: by_due,
            TaskSort.PRIORITY: lambda t: (t.priority, *by_due(t)),
            TaskSort.CREATED: lambda t: (t.created_at, t.id),
        }
        return sorted(tasks, key=orders[TaskSort(query.sort)])

    def query(self, query):
        return self._match(query)[query.offset:query.offset + query.limit]

    def query_in_cases(self, query):
        return [
            TaskInCase(task, case.subject_name, case.subject_ref, case.setting, case.process_id)
            for task in self.query(query)
            for case in [self.cases.rows[task.case_id]]
        ]

    def count(self, query):
        return len(self._match(query))

    def task_types(self, query):
        tasks = self._match(dataclasses.replace(query, element_id=None))
        titles = {t.element_id: t.title for t in reversed(tasks)}
        types = {element_id: (title, sum(t.element_id == element_id for t in tasks)) for element_id, title in titles.items()}
        return dict(sorted(types.items(), key=lambda p: p[1][0]))


class FakeTimers(_Repo):
    def for_case(self, case_id, *, pending_only=True, statuses=None):
        if statuses is not None:
            return [t for t in self._all() if t.case_id == case_id and t.status in statuses]
        return [t for t in self._all() if t.case_id == case_id and (not pending_only or t.status == TimerStatus.PENDING)]

    def due(self, now, *, limit=100):
        due = [t for t in self._all() if t.status == TimerStatus.PENDING and t.due_at <= now]
        return sorted(due, key=lambda t: t.due_at)[:limit]

    def claim(self, now, *, owner, lease_until, limit):
        firable = [
            t for t in self.due(now, limit=len(self.table.rows))
            if (t.retry_at is None or t.retry_at <= now) and (t.lease_expires_at is None or t.lease_expires_at <= now)
            and self.cases.rows[t.case_id].status == "active"
        ][:limit]
        for timer in firable:
            timer.lease_owner, timer.lease_expires_at = owner, lease_until
            self.update(timer)
        return firable

    def release(self, timer_id, *, owner):
        timer = self.table.rows.get(timer_id)
        if timer is not None and timer.lease_owner == owner:
            timer.lease_owner = timer.lease_expires_at = None

    def release_all(self, *, owner):
        mine = [t for t in self.table.rows.values() if t.lease_owner == owner and t.status == TimerStatus.PENDING]
        for timer in mine:
            timer.lease_owner = timer.lease_expires_at = None
        return len(mine)


class FakeMessages(_Repo):
    def replace_for_case(self, case_id, waits):
        for key in [k for k, w in self.table.rows.items() if w.case_id == case_id]:
            del self.table.rows[key]
        for wait in waits:
            self.table.insert(wait)

    def for_case(self, case_id):
        return [w for w in self._all() if w.case_id == case_id]

    def find(self, name):
        return [w for w in self._all() if w.name == name]


class FakeEvents(_Repo):
    def append(self, event):
        return self.table.insert(event)

    def for_case(self, case_id):
        return [e for e in self._all() if e.case_id == case_id]


class FakeNotes(_Repo):
    def for_case(self, case_id):
        return sorted((n for n in self._all() if n.case_id == case_id), key=lambda n: (n.at, n.id), reverse=True)


class FakeIncidents(_Repo):
    def for_case(self, case_id, *, open_only=True):
        return [i for i in self._all() if i.case_id == case_id and (not open_only or i.status == "open")]


class FakeUsers(_Repo):
    def get_by_username(self, username):
        return next((u for u in self._all() if u.username == username), None)

    def list(self):
        return self._all()

    def update(self, user):
        stored = self.table.rows.get(user.id, user)  # the lock-out columns change only through the methods below
        self.table.rows[user.id] = dataclasses.replace(
            copy.deepcopy(user), failed_signins=stored.failed_signins, locked_until=stored.locked_until)

    def record_failed_signin(self, user_id, *, now, attempts, lock_until):
        user = self.table.rows[user_id]
        if user.locked_until is not None and user.locked_until > now:
            return None
        reached = user.failed_signins + 1 >= attempts
        user.failed_signins, user.locked_until = (0, lock_until) if reached else (user.failed_signins + 1, None)
        return user.failed_signins, user.locked_until

    def record_good_signin(self, user_id, *, now, checked_hash, new_hash):
        user = self.table.rows[user_id]
        if user.password_hash != checked_hash or (user.locked_until is not None and user.locked_until > now):
            return False
        user.failed_signins, user.locked_until = 0, None
        user.password_hash = new_hash or user.password_hash
        return True

    def unlock(self, user_id):
        self.table.rows[user_id].failed_signins, self.table.rows[user_id].locked_until = 0, None


class FakeApiTokens(_Repo):
    def __init__(self, table, users):
        super().__init__(table)
        self.users = users

    def get_by_hash(self, token_hash):
        return next((token for token in self._all() if token.token_hash == token_hash), None)

    def with_holder(self, token_hash):
        token = self.get_by_hash(token_hash)
        return (token, self.users.get(token.user_id)) if token is not None else None

    def for_user(self, user_id):
        return [token for token in self._all() if token.user_id == user_id]


class FakeCaseFlags(_Repo):
    """Stored flags, and the scan's findings worked out in Python over the other fake tables."""

    FOLLOWED = ("setting", "process_id", "assignee", "candidate_role", "element_id", "detail")

    def __init__(self, tables):
        super().__init__(tables["flags"])
        self.tables = tables

    def _rows(self, name):
        return [copy.deepcopy(row) for row in self.tables[name].rows.values()]

    def find_stuck(self, *, now, timer_due_before, idle_before):
        cases = {case.id: case for case in self._rows("cases")}
        active = {case_id: case for case_id, case in cases.items() if case.status == CaseStatus.ACTIVE}
        open_tasks = [task for task in self._rows("tasks") if task.status in OPEN_TASK_STATUSES]
        pending = [timer for timer in self._rows("timers") if timer.status == TimerStatus.PENDING]
        findings = []

        def found(case, reason, subject, since, **fields):
            findings.append(CaseFlag(case.id, reason, subject, since, now, case.setting, case.process_id, **fields))

        for task in (task for task in open_tasks if task.case_id in active):
            task_fields = dict(assignee=task.assignee, candidate_role=task.candidate_role, element_id=task.element_id, detail=task.title)
            if task.due_at is not None and task.due_at <= now:
                found(active[task.case_id], FlagReason.TASK_OVERDUE, f"task:{task.id}", task.due_at, **task_fields)
            elif task.at_risk_at is not None and task.at_risk_at <= now:
                found(active[task.case_id], FlagReason.TASK_AT_RISK, f"task:{task.id}", task.at_risk_at, **task_fields)
        for timer in pending:
            if timer.case_id in active and timer.due_at <= timer_due_before:
                found(active[timer.case_id], FlagReason.TIMER_OVERDUE, f"timer:{timer.id}", timer.due_at,
                      element_id=timer.element_id, detail=f"The timer '{timer.element_id}' has not fired.")
        for incident in self._rows("incidents"):
            case = cases.get(incident.case_id)
            if incident.status == IncidentStatus.OPEN and case.status not in (CaseStatus.COMPLETED, CaseStatus.CANCELLED):
                found(case, FlagReason.INCIDENT, f"incident:{incident.id}", incident.created_at,
                      element_id=incident.element_id, detail=" ".join(incident.message.split()))
        busy = {task.case_id for task in open_tasks} | {timer.case_id for timer in pending}
        for case in active.values():
            last_action = case.updated_at or case.opened_at
            if case.id not in busy:
                awaited = sorted({wait.name for wait in self._rows("messages") if wait.case_id == case.id})
                found(case, FlagReason.STALLED, "case", last_action, detail=f"Waits only for {awaited}." if awaited else "")
            if last_action < idle_before:
                found(case, FlagReason.IDLE, "case", last_action)
        return findings

    def replace_all(self, findings, *, now):
        stored = {(flag.case_id, flag.reason, flag.subject): flag for flag in self._all()}
        raised = []
        for finding in findings:
            previous = stored.pop((finding.case_id, finding.reason, finding.subject), None)
            if previous is None:
                finding.detected_at = now
                raised.append(self.table.insert(finding))
            else:
                finding.id, finding.since, finding.detected_at = previous.id, previous.since, previous.detected_at
                self.update(finding)
        for flag in stored.values():
            del self.table.rows[flag.id]
        return FlagChanges(raised=raised, cleared=list(stored.values()))

    def follow_assignee(self, task_ids, assignee):
        for flag in self._all():
            if flag.subject in {f"task:{task_id}" for task_id in task_ids}:
                flag.assignee = assignee
                self.update(flag)

    def clear_settled(self, case_id):
        standing = {f"task:{task.id}" for task in self._rows("tasks") if task.status in OPEN_TASK_STATUSES}
        standing |= {f"timer:{timer.id}" for timer in self._rows("timers") if timer.status == TimerStatus.PENDING}
        standing |= {f"incident:{i.id}" for i in self._rows("incidents") if i.status == IncidentStatus.OPEN}
        settled = [flag for flag in self._all() if flag.case_id == case_id and (
            flag.reason in (FlagReason.IDLE, FlagReason.STALLED) or flag.subject not in standing)]
        for flag in settled:
            del self.table.rows[flag.id]
        return len(settled)

    def _match(self, query: FlagQuery):
        flags = [
            flag for flag in self._all()
            if (query.reasons is None or flag.reason in query.reasons)
            and (query.settings is None or flag.setting in query.settings)
            and query.process_id in (None, flag.process_id)
            and query.assignee in (None, flag.assignee)
            and query.case_id in (None, flag.case_id)
        ]
        return sorted(flags, key=lambda flag: (flag.since, flag.id))

    def query(self, query):
        return self._match(query)[query.offset:query.offset + query.limit]

    def count(self, query):
        return len(self._match(query))

    def count_by_reason(self, query):
        return {reason: sum(flag.reason == reason for flag in self._match(query)) for reason in FlagReason}

    def count_by_setting(self, query):
        counts = {}
        for flag in self._match(query):
            counts[flag.setting] = counts.get(flag.setting, 0) + 1
        return dict(sorted(counts.items()))


class FakeSchedulerMarks:
    """Named marks: (time taken, owner) by name."""

    def __init__(self, table: _Table):
        self.table = table

    def take(self, name, *, owner, now, every):
        mark = self.table.rows.get(name)
        if mark is not None and mark[0] > now - every:
            return False
        self.table.rows[name] = (now, owner)
        return True


class FakeAudit:
    """Reads kept in their own table; the trail merged from the events and the reads. No update, no delete."""

    def __init__(self, tables):
        self.tables = tables

    def add_reads(self, reads):
        for read in reads:
            self.tables["reads"].insert(copy.deepcopy(read))

    def reads_of_case(self, case_id, *, limit=50):
        reads = [r for r in self.tables["reads"].rows.values() if r.case_id == case_id]
        return [copy.deepcopy(r) for r in sorted(reads, key=lambda r: -r.id)[:limit]]

    def has_actor(self, actor):
        return any(row.actor == actor for name in ("events", "reads") for row in self.tables[name].rows.values())

    def trail(self, *, case_id=None, actor=None, since=None, until=None, batch_size=1000):
        from workflows.audit import TrailEntry

        def kept(row):
            return (case_id in (None, row.case_id) and actor in (None, row.actor)
                    and (since is None or row.at >= since) and (until is None or row.at < until))

        entries = sorted(
            [(e.at, 0, e.id, TrailEntry(e.at, e.actor, e.case_id, e.kind, payload=copy.deepcopy(e.payload)))
             for e in self.tables["events"].rows.values() if kept(e)]
            + [(r.at, 1, r.id, TrailEntry(r.at, r.actor, r.case_id, "read", r.channel, r.what))
               for r in self.tables["reads"].rows.values() if kept(r)],
            key=lambda entry: entry[:3])
        for start in range(0, len(entries), batch_size):
            yield [entry[3] for entry in entries[start:start + batch_size]]


class FakeUnitOfWork:
    """Works on a private copy of the store; commit publishes it, leaving without commit drops it."""

    def __init__(self, store: FakeStore, *, read_only: bool = False):
        self.store = store
        self.read_only = read_only
        self.committed = False

    def __enter__(self):
        self._tables = copy.deepcopy(self.store.tables)
        self.processes = FakeProcesses(self._tables["processes"])
        self.cases = FakeCases(self._tables["cases"])
        self.tasks = FakeTasks(self._tables["tasks"])
        self.tasks.cases = self._tables["cases"]
        self.timers = FakeTimers(self._tables["timers"])
        self.timers.cases = self._tables["cases"]
        self.messages = FakeMessages(self._tables["messages"])
        self.events = FakeEvents(self._tables["events"])
        self.notes = FakeNotes(self._tables["notes"])
        self.incidents = FakeIncidents(self._tables["incidents"])
        self.users = FakeUsers(self._tables["users"])
        self.tokens = FakeApiTokens(self._tables["tokens"], self.users)
        self.flags = FakeCaseFlags(self._tables)
        self.marks = FakeSchedulerMarks(self._tables["marks"])
        self.audit = FakeAudit(self._tables)
        return self

    def __exit__(self, *exc):
        self._tables = None

    def commit(self):
        assert not self.read_only, "a read-only unit of work must not commit"
        self.store.tables = self._tables
        self.committed = True

    def rollback(self):
        self._tables = copy.deepcopy(self.store.tables)


class FakeUnitOfWorkFactory:
    def __init__(self):
        self.store = FakeStore()

    def __call__(self, *, read_only: bool = False, snapshot: bool = True):
        assert snapshot or read_only, "only a read-only unit of work can run without a transaction"
        return FakeUnitOfWork(self.store, read_only=read_only)


def user(username="carla", *roles):
    from workflows.model import User

    return User(username, list(roles or ("case_manager",)), username)


