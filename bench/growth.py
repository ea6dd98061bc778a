"""Growth: the cost of one action after 1, 10, 100 and 300 daily review cycles of one case.

    .venv/bin/python bench/growth.py                     # engine, then the service on SQLite and PostgreSQL
    .venv/bin/python bench/growth.py --db sqlite --cycles 1,10,100,300 --cases 8

A review cycle of the acute-hospital stay (bpmn/acute_hospital/acute_stay.bpmn): the
"Next review date" timer fires, then a case manager completes the "Continued-stay
review" task. A self-pay inpatient's case is started, its admission review and early
screen done, and it is driven through the cycles; at each checkpoint the next review
completion is measured three ways:

- SpiffWorkflow alone: restore the stored state with SpiffWorkflow's serializer, complete
  the task and run the engine, serialise again: no pruning, nothing derived, no database
  (our diagrams' script functions and timers, so the same work the service asks for);
- the Casework engine: the same step through `Engine.resume` / `complete_task` /
  `serialize`, which prune finished history after each action (workflows/pruning.py);
- the service: `handlers.complete_task` on the database (load the case and its task
  rows, validate the form, the engine step, write the state, the derived task and timer
  rows and the events, commit), median over several cases driven in step.

The stored state's size is printed beside each, and so is the database's growth per
cycle (the audit trail is kept: events, completed task rows and fired timer rows).
"""
from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from SpiffWorkflow.util.task import TaskState  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bench.harness import (  # noqa: E402
    ACUTE_START,
    ADMISSION_REVIEW,
    CONTINUED_STAY_REVIEW,
    EARLY_SCREEN,
    FIRST_MOMENT,
    MovableClock,
    bench_app,
    databases,
    median,
    print_header,
    print_table,
    scratch_folder,
    timed_ms,
)
from workflows import catalog, handlers  # noqa: E402
from workflows.clock import running_at  # noqa: E402
from workflows.due_rules import DuePolicy  # noqa: E402
from workflows.engine import CaseRun, Engine  # noqa: E402
from workflows.model import TaskStatus, User  # noqa: E402
from workflows.process_tests.simulation import SimulatedCase  # noqa: E402

CASE_MANAGER = User("carla", ["case_manager"])
REVIEW = "continued_stay_review"
WARM_UPS = 3  # cases driven like the others but not timed


def acute_bundle():
    sets = catalog.find_diagram_sets(REPO / "bpmn")
    acute = next(s for s in sets if s.name == "acute_hospital")
    return catalog.build_bundles(catalog.with_dependencies(acute, sets))["acute_stay"]


# -- SpiffWorkflow alone ----------------------------------------------------------
def bare_review_step(engine: Engine, bundle, state: str, now) -> str:
    """Restore, complete the review task, run the engine, serialise: SpiffWorkflow's work only."""
    workflow = engine.serializer.loads(state, bundle.spec, bundle.subprocess_specs)
    workflow.script_engine = engine.script_engine
    with running_at(now, fire_waiting_timers=False):
        task = next(t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.name == REVIEW)
        task.data.update(CONTINUED_STAY_REVIEW)
        task.run()
        workflow.do_engine_steps()
    return engine.serializer.dumps(workflow)


def bare_fire_timers(engine: Engine, bundle, state: str, now) -> str:
    workflow = engine.serializer.loads(state, bundle.spec, bundle.subprocess_specs)
    workflow.script_engine = engine.script_engine
    with running_at(now):
        workflow.refresh_timers()
        workflow.do_engine_steps()
    return engine.serializer.dumps(workflow)


def next_review_due(engine: Engine, bundle, state: str):
    run = CaseRun(engine, bundle, engine.serializer.loads(state, bundle.spec, bundle.subprocess_specs))
    return min(t.due_at for t in run.waiting_timers() if t.element_id == "wait_for_next_review")


def spiff_alone(bundle, checkpoints: list[int], repeat: int) -> list[list]:
    """Drive the case with SpiffWorkflow alone (no pruning); time the review step at each checkpoint."""
    engine = Engine()
    case = SimulatedCase(engine, bundle, now=FIRST_MOMENT, policy=DuePolicy())
    case.start(dict(ACUTE_START))
    case.complete("admission_review", ADMISSION_REVIEW)
    case.complete("early_screen", EARLY_SCREEN)  # the history so far is pruned; from here on nothing is
    state, now, rows = case.state, case.now, []
    for cycle in range(1, max(checkpoints) + 1):
        try:
            now = next_review_due(engine, bundle, state)
            state = bare_fire_timers(engine, bundle, state, now)
            if cycle in checkpoints:
                times = [timed_ms(lambda: bare_review_step(engine, bundle, state, now))[0] for _ in range(repeat)]
                rows.append(["SpiffWorkflow alone", cycle, median(times), len(state)])
            state = bare_review_step(engine, bundle, state, now)
        except Exception as err:  # SpiffWorkflow's depth-limited tree walks give up on deep histories
            rows.append(["SpiffWorkflow alone", cycle, f"fails: {type(err).__name__}: {str(err)[:80]}", len(state)])
            break
    return rows


# -- the Casework engine ----------------------------------------------------------
def casework_engine(bundle, checkpoints: list[int], repeat: int) -> list[list]:
    engine = Engine()
    case = SimulatedCase(engine, bundle, now=FIRST_MOMENT, policy=DuePolicy())
    case.start(dict(ACUTE_START))
    case.complete("admission_review", ADMISSION_REVIEW)
    case.complete("early_screen", EARLY_SCREEN)
    rows = []
    for cycle in range(1, max(checkpoints) + 1):
        case.advance_to(next_review_due(engine, bundle, case.state))
        if cycle in checkpoints:
            task = case._open_task(REVIEW, {})

            def step():
                run = engine.resume(bundle, case.state)
                run.complete_task(task.task_ref, CONTINUED_STAY_REVIEW, now=case.now)
                return run.serialize()

            times = [timed_ms(step)[0] for _ in range(repeat)]
            rows.append(["Casework engine (pruned)", cycle, median(times), len(case.state)])
        case.complete(REVIEW, CONTINUED_STAY_REVIEW)
    return rows


# -- the service --------------------------------------------------------------------
def service(kind: str, folder: Path, checkpoints: list[int], cases: int) -> list[list]:
    clock = MovableClock()
    with bench_app(kind, folder, CLOCK=clock) as app:
        services = app.extensions["casework"]
        case_ids = []
        for n in range(WARM_UPS + cases):
            case = handlers.start_case(services, actor=CASE_MANAGER, process_id="acute_stay",
                                       data=dict(ACUTE_START, mrn=f"MRN-{n:06d}"), subject_name=f"Patient {n}")
            case_ids.append(case.id)
            complete(services, case.id, "admission_review", ADMISSION_REVIEW)
            complete(services, case.id, "early_screen", EARLY_SCREEN)
        rows, first_bytes = [], None
        for cycle in range(1, max(checkpoints) + 1):
            clock.moment += timedelta(days=1)
            handlers.fire_due_timers(services)
            # The first completions of a process (cold statement caches, prepared statements) are not timed.
            times = [complete(services, case_id, REVIEW, CONTINUED_STAY_REVIEW) for case_id in case_ids][WARM_UPS:]
            if cycle in checkpoints:
                size = database_bytes(app)
                first_bytes = first_bytes or (cycle, size)
                per_cycle = ((size - first_bytes[1]) / (cycle - first_bytes[0]) / len(case_ids) / 1024
                             if cycle > first_bytes[0] else float("nan"))
                rows.append([f"service, {kind}", cycle, median(times), state_bytes(services, case_ids[0]), per_cycle])
        return rows


def complete(services, case_id: int, element_id: str, data: dict) -> float:
    with services.uow(read_only=True) as uow:
        [task] = [t for t in uow.tasks.for_case(case_id, open_only=True) if t.element_id == element_id]
    ms, done = timed_ms(lambda: handlers.complete_task(services, actor=CASE_MANAGER, task_id=task.id, data=data))
    assert done.status is TaskStatus.COMPLETED
    return ms


def state_bytes(services, case_id: int) -> int:
    with services.uow(read_only=True) as uow:
        return len(uow.cases.get(case_id).state)


def database_bytes(app) -> int:
    """Bytes the database takes: every table and index of the schema (PostgreSQL) or the file (SQLite).

    PostgreSQL keeps every replaced version of a row until vacuumed (a case's state is rewritten on
    every action): its tables are compacted first (VACUUM FULL), so only what is kept is counted.
    """
    services = app.extensions["casework"]
    if app.bench_database.schema:
        with services.uow.engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            tables = connection.exec_driver_sql(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()").scalars().all()
            connection.exec_driver_sql(f"VACUUM FULL {', '.join(tables)}")
    with services.uow() as uow:
        connection = uow.connection
        if connection.dialect.name == "postgresql":
            return connection.execute(text(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind = 'r'")).scalar()
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        free = connection.exec_driver_sql("PRAGMA freelist_count").scalar()
        return (pages - free) * connection.exec_driver_sql("PRAGMA page_size").scalar()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--cycles", default="1,10,100,300", help="checkpoints, comma-separated")
    parser.add_argument("--cases", type=int, default=8, help="cases driven in step through the service")
    parser.add_argument("--repeat", type=int, default=15, help="timings of the in-process steps at each checkpoint")
    args = parser.parse_args()
    checkpoints = sorted({int(n) for n in args.cycles.split(",")})
    print_header()
    bundle = acute_bundle()
    rows = spiff_alone(bundle, checkpoints, args.repeat) + casework_engine(bundle, checkpoints, args.repeat)
    with scratch_folder() as folder:
        for kind in databases(args.db):
            rows += service(kind, folder, checkpoints, args.cases)
    table = []
    for what, cycle, ms, size, *rest in rows:
        first = next(r[2] for r in rows if r[0] == what)
        ratio = ms / first if isinstance(ms, float) and isinstance(first, float) else "–"
        table.append([what, cycle, ms, ratio, f"{size / 1024:.1f}", f"{rest[0]:.2f}" if rest and rest[0] == rest[0] else "–"])
    print_table(["what", "after cycles", "one completion ms (median)", "x first", "stored state KB",
                 "database KB per cycle"], table)


if __name__ == "__main__":
    main()
