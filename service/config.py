"""Configuration from the environment: every setting has a CASEWORK_ variable."""
from __future__ import annotations

import os
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _numbers(value: str | None, name: str, default: str) -> list[float]:
    text = value if value not in (None, "") else default
    try:
        numbers = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{name} must be numbers separated by commas, e.g. \"{default}\"; got {text!r}") from None
    if any(number < 0 for number in numbers):
        raise ValueError(f"{name} must not be negative; got {text!r}")
    return numbers


def _positive(value: str | None, name: str, default: float) -> float:
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, e.g. {default:g}; got {value!r}") from None
    if not number > 0:
        raise ValueError(f"{name} must be more than 0; got {value!r}")
    return number


def from_environment(environ: dict[str, str] | None = None) -> dict:
    """Return the app settings read from CASEWORK_* environment variables."""
    env = os.environ if environ is None else environ
    return {
        "DATABASE_URL": env.get("CASEWORK_DATABASE_URL") or None,
        "SECRET_KEY": env.get("CASEWORK_SECRET_KEY") or None,
        "SCHEDULER_ENABLED": _flag(env.get("CASEWORK_SCHEDULER"), True),
        "TIMER_POLL_SECONDS": float(env.get("CASEWORK_TIMER_POLL_SECONDS") or 5),
        "TIMER_LEASE_SECONDS": float(env.get("CASEWORK_TIMER_LEASE_SECONDS") or 60),
        "TIMER_BATCH_SIZE": int(env.get("CASEWORK_TIMER_BATCH_SIZE") or 50),
        # None: 4 on PostgreSQL (a firing mostly waits for the server), 1 on SQLite (one writer).
        "TIMER_THREADS": int(env["CASEWORK_TIMER_THREADS"]) if env.get("CASEWORK_TIMER_THREADS") else None,
        "TIMER_RETRY_MINUTES": _numbers(env.get("CASEWORK_TIMER_RETRY_MINUTES"), "CASEWORK_TIMER_RETRY_MINUTES", "1,5,15"),
        "SCAN_SECONDS": float(env.get("CASEWORK_SCAN_SECONDS") or 60),
        "IDLE_DAYS": float(env.get("CASEWORK_IDLE_DAYS") or 7),
        "BPMN_PATH": env.get("CASEWORK_BPMN_PATH") or str(REPOSITORY_ROOT / "bpmn"),
        "NODE_MODULES": env.get("CASEWORK_NODE_MODULES") or str(REPOSITORY_ROOT / "node_modules"),
        "SCRIPT_TIME_LIMIT_SECONDS": float(env.get("CASEWORK_SCRIPT_TIME_LIMIT") or 1.0),
        "TIMEZONE": env.get("CASEWORK_TIMEZONE") or "UTC",
        "HOLIDAYS": [d.strip() for d in (env.get("CASEWORK_HOLIDAYS") or "").split(",") if d.strip()],
        "AT_RISK_FRACTION": float(env.get("CASEWORK_AT_RISK_FRACTION") or 0.8),
        "WORKING_HOURS": env.get("CASEWORK_WORKING_HOURS") or "08:00-17:00",
        "MAX_CONTENT_LENGTH": int(env.get("CASEWORK_MAX_UPLOAD_BYTES") or 5 * 1024 * 1024),
        "METRICS_TOKEN": env.get("CASEWORK_METRICS_TOKEN") or None,
        # Signing in and sessions (service/web/auth.py).
        "SIGNIN_ATTEMPTS": int(_positive(env.get("CASEWORK_SIGNIN_ATTEMPTS"), "CASEWORK_SIGNIN_ATTEMPTS", 5)),
        "LOCKOUT_MINUTES": _positive(env.get("CASEWORK_LOCKOUT_MINUTES"), "CASEWORK_LOCKOUT_MINUTES", 15),
        "SESSION_IDLE_MINUTES": _positive(env.get("CASEWORK_SESSION_IDLE_MINUTES"), "CASEWORK_SESSION_IDLE_MINUTES", 30),
        "SESSION_MAX_HOURS": _positive(env.get("CASEWORK_SESSION_MAX_HOURS"), "CASEWORK_SESSION_MAX_HOURS", 12),
        "SESSION_COOKIE_SECURE": _flag(env.get("CASEWORK_SECURE_COOKIES"), False),
        "PROXY_FIX": _flag(env.get("CASEWORK_PROXY_FIX"), False),
    }
