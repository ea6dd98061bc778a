"""What a signed-in session holds, when it ends, and how its cookie travels.

The cookie is Flask's signed cookie: readable by its holder, so it carries no secret, only
who signed in, a fingerprint of their password (a new password ends older sessions), when
they signed in and when they were last seen, both on the services' clock.
"""
from __future__ import annotations

from datetime import datetime

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from workflows import accounts
from workflows.model import User



class SessionCookies(SecureCookieSessionInterface):
    """Flask's session cookie, marked Secure when configured or when the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)


def init_app(app: Flask) -> None:
    """Give the app its session cookie and, when configured, believe one proxy's X-Forwarded-Proto."""
    app.session_interface = SessionCookies()
    if app.config.get("PROXY_FIX"):
        # Behind one reverse proxy that terminates TLS: believe its X-Forwarded-Proto, nothing else.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=0, x_proto=1, x_host=0, x_port=0, x_prefix=0)


def session_for(user: User, now: datetime) -> dict[str, object]:
    """The values a session starts with when `user` signs in at `now`."""
    moment = now.timestamp()
    return {"username": user.username, "key": accounts.session_key(user), "signed_in": moment, "seen": moment}


def why_ended(session, user: User | None, now: datetime, config) -> str | None:
    """Why this session may not go on (a sentence for the person), or None while it is good."""
    if user is None:
        return "Your session ended because your account is no longer active. Ask an administrator if that is wrong."
    signed_in, seen = session.get("signed_in"), session.get("seen")
    if session.get("key") is None or not isinstance(signed_in, (int, float)) or not isinstance(seen, (int, float)):
        return "Your session ended. Sign in again to go on."
    if session["key"] != accounts.session_key(user):
        return "Your session ended because your password was changed. Sign in with the new password."
    moment = now.timestamp()
    hours, minutes = config["SESSION_MAX_HOURS"], config["SESSION_IDLE_MINUTES"]
    if moment - signed_in > hours * 3600:
        return f"Your session expired: a session lasts at most {hours:g} hours. Sign in again to go on."
    if moment - seen > minutes * 60:
        return f"Your session expired after {minutes:g} minutes without activity. Sign in again to go on."
    return None


def touch(session, now: datetime) -> None:
    """Note that the session's person was seen now: the idle time starts again."""
    session["seen"] = now.timestamp()
