"""The `casework` command: run, worker, db upgrade, deploy, validate, test-diagrams, user, demo."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from workflows import catalog, deployment
from workflows.errors import CaseworkError, DiagramError


def _app(**config):
    from sqlalchemy.exc import OperationalError

    from . import create_app

    try:
        return create_app(config or None)
    except OperationalError as err:
        reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
        raise click.ClickException(f"Cannot reach the database: {reason}. Check CASEWORK_DATABASE_URL.") from err


def _services(app):
    return app.extensions["casework"]


def _diagram_sets(path: Path) -> list[catalog.DiagramSet]:
    path = path.resolve()
    if not path.exists():
        raise click.ClickException(f"{path} does not exist.")
    if path.is_file():
        return [catalog.DiagramSet(path.stem, {path.name: path.read_bytes()})]
    sets = catalog.find_diagram_sets(path)
    if not sets:
        raise click.ClickException(f"No .bpmn files found under {path}.")
    return sets


def _library(bpmn_path: str) -> list[catalog.DiagramSet]:
    """Return the diagram sets under the configured bpmn/ folder, which called processes come from."""
    return catalog.find_diagram_sets(Path(bpmn_path))


def deploy_folder(app, path: Path, *, only_new: bool = False) -> list:
    """Deploy every diagram set under a folder; stop at the first set with problems.

    The library set (bpmn/common) is not deployed on its own: its processes go out with
    the sets that call them. With `only_new`, files deployed once before are skipped, so a
    restart does not undo what designers deployed since.
    """
    deployed = []
    library = _library(app.config["BPMN_PATH"])
    sets = _diagram_sets(path)
    for diagram_set in [s for s in sets if s.name != catalog.LIBRARY_SET] or sets:
        deployed.extend(
            deployment.deploy_diagram_set(_services(app), diagram_set=diagram_set, library=library, actor=None,
                                          only_new=only_new)
        )
    return deployed


@click.group()
def main():
    """Casework: healthcare case management run as BPMN processes."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # SpiffWorkflow logs every task state change at INFO: noise, and a cost on every action.
    logging.getLogger("spiff").setLevel(logging.WARNING)
    # APScheduler logs each run of the poll (every few seconds); the poll logs what it did.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--demo/--no-demo", default=False, help="Load demo users and cases into an empty database.")
@click.option("--scheduler/--no-scheduler", default=None, help="Run the timer poll in this process (default: CASEWORK_SCHEDULER, on).")
@click.option("--reload", is_flag=True, help="Restart when the code changes (development).")
def run(host: str, port: int, demo: bool, scheduler: bool | None, reload: bool):
    """Serve the web app and API, with the timer scheduler inside."""
    from . import demo as demo_data
    from .jobs import start_embedded_scheduler, stop_embedded_scheduler

    app = _app()
    bpmn_root = Path(app.config["BPMN_PATH"])
    if bpmn_root.is_dir():
        for version in deploy_folder(app, bpmn_root, only_new=True):
            click.echo(f"Deployed {version.process_id} v{version.version}")
    if demo and demo_data.load_demo(_services(app), app.config["BPMN_PATH"]):
        click.echo("Loaded demo users and cases (see README for their tokens).")
    if scheduler if scheduler is not None else app.config["SCHEDULER_ENABLED"]:
        start_embedded_scheduler(app, reloading=reload)
    try:
        app.run(host=host, port=port, use_reloader=reload, threaded=True)
    finally:
        stop_embedded_scheduler()


@main.command()
def worker():
    """Run the timer scheduler alone (no web server)."""
    from .jobs import run_worker

    run_worker(_app())


@main.command("test-diagrams")
@click.argument("path", type=click.Path(path_type=Path), required=False)
@click.option("--coverage", is_flag=True, help="Also print, per diagram, the flow nodes the tests reached.")
def test_diagrams(path: Path | None, coverage: bool):
    """Run the process tests (tests/*.yaml) of the diagram set(s) at PATH, or the one test file PATH names."""
    from workflows.process_tests import format_report, run_diagram_tests

    from .config import from_environment

    bpmn_path = from_environment()["BPMN_PATH"]
    only = None
    if path is not None and path.is_file() and path.suffix in (".yaml", ".yml"):
        # One process test: run it in its diagram set (bpmn/<set>/tests/<test>.yaml).
        only, path = f"{path.parent.name}/{path.name}", path.resolve().parent.parent
    report = run_diagram_tests(_diagram_sets(path or Path(bpmn_path)), _library(bpmn_path), only=only)
    for line in format_report(report, coverage=coverage):
        click.echo(line)
    sys.exit(0 if report.passed and report.outcomes else 1)


@main.group()
def db():
    """Database commands."""


@db.command("upgrade")
def db_upgrade():
    """Create or upgrade the database schema to the latest migration."""
    app = _app()
    click.echo(f"Database is up to date: {app.config['DATABASE_URL'].split('@')[-1]}")


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
def deploy(path: Path):
    """Validate and deploy the diagram set(s) at PATH."""
    app = _app()
    try:
        versions = deploy_folder(app, path)
    except DiagramError as err:
        _print_problems(err.problems)
        sys.exit(1)
    for version in versions:
        click.echo(f"{version.process_id} v{version.version} ({version.content_hash[:12]})")


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Fail on warnings too, not only on errors.")
def validate(path: Path, strict: bool):
    """Check the diagram set(s) at PATH without deploying; exit 1 on any error (or warning, with --strict)."""
    failed = False
    for name, problems in _validation_reports(path):
        errors = sum(problem.is_error for problem in problems)
        warnings = len(problems) - errors
        failed = failed or bool(errors) or (strict and bool(warnings))
        click.echo(f"{name}: {errors} error(s), {warnings} warning(s)" if problems else f"{name}: ok")
        for problem in problems:
            click.echo(f"  {problem}")
    sys.exit(1 if failed else 0)


def _validation_reports(path: Path) -> list[tuple[str, list]]:
    """Validate each set at PATH; any failure becomes one ClickException line, never a traceback."""
    from .config import from_environment

    # The catalog logs unexpected failures with their traceback; here they are reported as one line.
    core_log = logging.getLogger("workflows")
    level = core_log.level
    core_log.setLevel(logging.CRITICAL + 1)
    try:
        library = _library(from_environment()["BPMN_PATH"])
        return [(diagram_set.name, catalog.validate(catalog.with_dependencies(diagram_set, library)))
                for diagram_set in _diagram_sets(path)]
    except click.ClickException:
        raise
    except DiagramError as err:
        raise click.ClickException(str(err)) from err
    except OSError as err:
        raise click.ClickException(f"{path} could not be read: {err}.") from err
    except Exception as err:
        raise click.ClickException(f"{path} could not be validated ({type(err).__name__}: {err}).") from err
    finally:
        core_log.setLevel(level)


@main.command()
def demo():
    """Load demo users and cases into an empty database."""
    from . import demo as demo_data

    app = _app()
    bpmn_root = Path(app.config["BPMN_PATH"])
    if bpmn_root.is_dir():
        deploy_folder(app, bpmn_root, only_new=True)
    click.echo("Loaded demo data." if demo_data.load_demo(_services(app), app.config["BPMN_PATH"]) else "Users exist already; nothing loaded.")


def _print_problems(problems) -> None:
    for problem in problems:
        click.echo(f"  {problem}", err=True)


def _describe(err: CaseworkError) -> str:
    fields = getattr(err, "field_errors", None) or {}
    details = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in fields.items())
    return f"{err.message} {details}".strip()


from . import cli_audit  # noqa: E402,F401  (adds `casework audit` to main)
from . import cli_users  # noqa: E402,F401  (adds `casework user` to main)
