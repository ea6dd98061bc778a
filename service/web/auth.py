"""Signing in and out: a session cookie names the user; every page but the sign-in page needs one."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for

from workflows import accounts

from . import bp

PUBLIC_ENDPOINTS = ("web.signin",)
WRONG_CREDENTIALS = "That username and password do not match an active account. Check both and try again."


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
    g.user = accounts.active_user(_services(), username=session.get("username"))
    if g.user is None and "username" in session:
        session.clear()  # the account was deactivated or removed since signing in
    if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        here = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("web.signin", next=here), 303)
    return None


@bp.route("/signin", methods=["GET", "POST"])
def signin():
    target = safe_target(request.values.get("next"))
    if request.method == "GET":
        if g.user is not None:
            return redirect(target, 303)
        return render_template("signin.html", next=target, username="")
    username = request.form.get("username", "")
    user = accounts.user_for_password(_services(), username=username, password=request.form.get("password", ""))
    if user is None:
        return render_template("signin.html", next=target, username=username, error=WRONG_CREDENTIALS)
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    session["username"] = user.username
    return redirect(target, 303)


@bp.post("/signout")
def signout():
    session.clear()
    flash("You have signed out.", "success")
    return redirect(url_for("web.signin"), 303)
