"""Casework's web service: the Flask app factory."""
from __future__ import annotations

import logging
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask

from workflows.due_rules import DuePolicy
from workflows.engine import Engine
from workflows.services import Services

from . import config as config_module
from . import security_headers
from .persistence import UnitOfWorkFactory, default_sqlite_url, make_engine, upgrade_database

log = logging.getLogger(__name__)


class SystemClock:
    """The wall clock, in UTC: the only place the service reads it for the core."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


def create_app(config: dict | None = None) -> Flask:
    """Build the Casework app: settings, database, core services, blueprints."""
    # SpiffWorkflow attaches every task's data to its INFO records: case data must not reach the logs,
    # however the app is started (the CLI, gunicorn, tests).
    spiff_log = logging.getLogger("spiff")
    if spiff_log.level < logging.WARNING:  # NOTSET (0) too
        spiff_log.setLevel(logging.WARNING)
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # A form's token lasts as long as the session: an inbox stays open all day.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.config.from_mapping(config_module.from_environment())
    if config:
        app.config.from_mapping(config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config["DATABASE_URL"] = app.config["DATABASE_URL"] or default_sqlite_url(app.instance_path)
    app.config["SECRET_KEY"] = app.config["SECRET_KEY"] or _instance_secret(app.instance_path)
    app.json.sort_keys = False

    if app.config.get("AUTO_MIGRATE", True):
        upgrade_database(app.config["DATABASE_URL"])
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["casework"] = Services(
        uow=UnitOfWorkFactory(engine),
        clock=app.config.get("CLOCK") or SystemClock(),
        engine=Engine(script_time_limit=app.config["SCRIPT_TIME_LIMIT_SECONDS"]),
        due_policy=DuePolicy.of(zone_name=app.config["TIMEZONE"], holidays=app.config["HOLIDAYS"],
                                at_risk_fraction=app.config["AT_RISK_FRACTION"],
                                working_hours=app.config["WORKING_HOURS"]),
    )

    from .api import bp as api_bp
    from .metrics import bp as metrics_bp
    from .web import bp as web_bp
    from .web import csrf, sessions

    csrf.init_app(app)
    sessions.init_app(app)
    csrf.exempt(api_bp)  # the API authenticates each request by its bearer token, not by a cookie
    app.register_blueprint(api_bp)
    app.register_blueprint(web_bp)
    app.register_blueprint(metrics_bp)
    security_headers.init_app(app)
    return app


def _instance_secret(instance_path: str) -> str:
    """Return a secret key kept in the instance folder, made on first start."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        os.chmod(path, 0o600)
    return path.read_text().strip()
