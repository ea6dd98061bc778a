"""Signing in and out: a session cookie names the user; every page but the sign-in page needs one.

A session ends after a spell without requests, at an absolute age, when the password changes
or the account is deactivated (sessions.py); too many wrong passwords in a row lock the account.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for

from workflows import accounts
from workflows.model import User

from . import bp, sessions
from .presentation import local_time

log = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = ("web.signin",)
WRONG_CREDENTIALS = "That username and password do not match an active account. Check both and try again."
LOCKED = ("This account is locked after too many wrong passwords, until {until}. Try again then, "
          "or ask an administrator to unlock it.")


def _services():
    return current_app.extensions["casework"]


def safe_target(value: str | None) -> str:
    """Return `value` if it is a path on this site, else the inbox: a link must never send a user elsewhere."""
    default = url_for("web.inbox")
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    # Browsers drop tabs and newlines from URLs, so "/\t/evil.example" would become "//evil.example".
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return default
    parts = urlsplit(value)
    return default if parts.scheme or parts.netloc else value


@bp.before_request
def require_signed_in_user():
    g.user = _session_user() if "username" in session else None
    if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        here = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("web.signin", next=here), 303)
    return None


def _session_user() -> User | None:
    """The signed-in user, or None when the session has ended (then cleared, with the reason flashed)."""
    services = _services()
    now = services.clock.now()
    user = accounts.active_user(services, username=session.get("username"))
    ended = sessions.why_ended(session, user, now, current_app.config)
    if ended:
        log.info("Session of %s ended: %s", session.get("username"), ended)
        session.clear()
        flash(ended, "error")
        return None
    sessions.touch(session, now)
    return user


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    target = safe_target(request.values.get("next"))
    if request.method == "GET":
        if g.user is not None:
            return redirect(target, 303)
        return render_template("signin.html", next=target, username="")
    username = request.form.get("username", "")
    config = current_app.config
    outcome = accounts.sign_in(_services(), username=username, password=request.form.get("password", ""),
                               attempts=config["SIGNIN_ATTEMPTS"], lockout=timedelta(minutes=config["LOCKOUT_MINUTES"]))
    if outcome.user is None:
        error = LOCKED.format(until=local_time(outcome.locked_until)) if outcome.locked_until else WRONG_CREDENTIALS
        return render_template("signin.html", next=target, username=username, error=error)
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    session.update(sessions.session_for(outcome.user, _services().clock.now()))
    return redirect(target, 303)


@bp.post("/signout")
def signout():
    session.clear()
    flash("You have signed out.", "success")
    return redirect(url_for("web.signin"), 303)
