"""Who may use Casework: users, their roles and settings, passwords, lock-outs and API tokens (admins only).

A form that is refused shows the page again with the reason next to the field, and changes nothing.
A new token's secret is shown once, on the page that answers the form: never stored in clear, never sent again.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import wraps

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict

from workflows import accounts
from workflows.errors import Conflict, Forbidden, InvalidInput, NotFound
from workflows.model import ALL_SETTINGS, User

from . import bp

ONLY_ADMINS = ("Only administrators can see and change users, their roles and their API tokens. "
               "Ask an administrator if your access needs to change.")
# Each refusal re-renders the page with this status; the page names the field.
REFUSALS = ((InvalidInput, 400), (Forbidden, 403), (NotFound, 404), (Conflict, 409))
_REFUSED = tuple(kind for kind, _ in REFUSALS)


def _services():
    return current_app.extensions["casework"]


def is_admin(user: User | None) -> bool:
    """Tell whether a user may manage users and tokens."""
    return user is not None and user.has_role(accounts.ADMIN_ROLE)


bp.add_app_template_global(is_admin, "is_admin")


def admin_only(view):
    """Answer 403 to anyone signed in without the admin role (sign-in itself is checked for every page)."""
    @wraps(view)
    def checked(**kwargs):
        if not is_admin(g.user):
            abort(403, description=ONLY_ADMINS)
        return view(**kwargs)
    return checked


@bp.get("/admin/users")
@admin_only
def admin_users():
    return _users_page()


@bp.post("/admin/users")
@admin_only
def admin_add_user():
    form = request.form
    try:
        user, _ = accounts.add_user(
            _services(), username=form.get("username", ""), roles=form.getlist("roles"),
            display_name=form.get("display_name", "").strip(), password=form.get("password") or None,
            settings=_chosen_settings(), actor=g.user,
        )
    except _REFUSED as refused:
        return _users_page(refused)
    flash(f"{user.username} can now use Casework. Issue an API token here if a system is to act as them.", "success")
    return redirect(url_for("web.admin_user", username=user.username), 303)


@bp.get("/admin/users/<username>")
@admin_only
def admin_user(username: str):
    return _user_page(_user(username))


@bp.post("/admin/users/<username>")
@admin_only
def admin_update_user(username: str):
    user = _user(username)
    try:
        # update_user refuses an admin's removing their own admin role: the last way in must not be lost.
        accounts.update_user(_services(), username=user.username, roles=request.form.getlist("roles"),
                             settings=_chosen_settings(user),
                             display_name=request.form.get("display_name", "").strip(), actor=g.user)
    except _REFUSED as refused:
        return _user_page(user, refused, form="profile")
    flash(f"{user.username}'s roles, settings and name are saved.", "success")
    return redirect(url_for("web.admin_user", username=user.username), 303)


@bp.post("/admin/users/<username>/<any(deactivate, reactivate):change>")
@admin_only
def admin_set_active(username: str, change: str):
    user = _user(username)
    try:  # update_user refuses an admin's deactivating themselves
        accounts.update_user(_services(), username=user.username, active=change == "reactivate", actor=g.user)
    except _REFUSED as refused:
        return _user_page(user, refused, form="active")
    flash(f"{user.username} is {'active again' if change == 'reactivate' else 'deactivated: signed out, tokens refused'}.",
          "success")
    return redirect(url_for("web.admin_user", username=user.username), 303)


@bp.post("/admin/users/<username>/password")
@admin_only
def admin_set_password(username: str):
    user = _user(username)
    try:
        accounts.set_password(_services(), username=user.username, password=request.form.get("password", ""),
                              actor=g.user)
    except _REFUSED as refused:
        return _user_page(user, refused, form="password")
    flash(f"{user.username} has a new password; tell them through a channel you trust.", "success")
    return redirect(url_for("web.admin_user", username=user.username), 303)


@bp.post("/admin/users/<username>/unlock")
@admin_only
def admin_unlock(username: str):
    user = _user(username)
    try:
        accounts.unlock(_services(), username=user.username, actor=g.user)
    except _REFUSED as refused:
        return _user_page(user, refused, form="unlock")
    flash(f"{user.username} can sign in again.", "success")
    return redirect(url_for("web.admin_user", username=user.username), 303)


@bp.post("/admin/users/<username>/tokens")
@admin_only
def admin_issue_token(username: str):
    user = _user(username)
    roles = request.form.getlist("roles")
    expires_at, expiry_problems = _expiry()
    problems = {field: found for field, found in (
        ("roles", [] if roles else ["Tick at least one of the user's roles."]), ("expires_on", expiry_problems)) if found}
    try:
        if problems:
            raise InvalidInput("The API token cannot be issued.", problems)
        token, secret = accounts.issue_token(_services(), username=user.username, name=request.form.get("name", ""),
                                             roles=roles, expires_at=expires_at, actor=g.user)
    except _REFUSED as refused:
        return _user_page(user, refused, form="token", renamed={"expires_at": "expires_on"})
    response = current_app.make_response(
        (render_template("admin_token_issued.html", user=user, token=token, secret=secret), 201))
    # The page holds the secret: no cache, shared or private, may keep it.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/admin/users/<username>/tokens/<int:token_id>/revoke")
@admin_only
def admin_revoke_token(username: str, token_id: int):
    user = _user(username)
    if token_id not in {token.id for token in accounts.tokens_of(_services(), username=user.username)}:
        abort(404, description=f"{user.username} has no API token number {token_id}.")
    try:
        token = accounts.revoke_token(_services(), token_id=token_id, actor=g.user)
    except _REFUSED as refused:
        return _user_page(user, refused, form="revoke")
    flash(f"The token '{token.name}' is revoked: it is refused from now on.", "success")
    return redirect(url_for("web.admin_user", username=user.username), 303)


def _user(username: str) -> User:
    found = next((user for user in accounts.list_users(_services()) if user.username == username), None)
    if found is None:
        abort(404, description=f"There is no user named '{username}'.")
    return found


def _status(refused: Exception) -> int:
    return next(code for kind, code in REFUSALS if isinstance(refused, kind))


def _field_errors(refused: Exception | None, renamed: dict[str, str] | None = None) -> dict[str, list[str]]:
    """The refusal's problems by the name of the form field they belong to."""
    renamed = renamed or {}
    return {renamed.get(name, name): problems for name, problems in (getattr(refused, "field_errors", None) or {}).items()}


def _users_page(refused: Exception | None = None):
    now = _services().clock.now()
    users = accounts.list_users(_services())
    live = {user.username: sum(1 for token in accounts.tokens_of(_services(), username=user.username)
                               if token.usable_at(now)) for user in users}
    page = render_template("admin_users.html", users=users, live_tokens=live, now=now, roles=accounts.KNOWN_ROLES,
                           settings=_setting_choices(), refused=refused, errors=_field_errors(refused),
                           entered=request.form if refused else MultiDict())
    return (page, _status(refused)) if refused else page


def _user_page(user: User, refused: Exception | None = None, *, form: str = "", renamed: dict[str, str] | None = None):
    now = _services().clock.now()
    tokens = accounts.tokens_of(_services(), username=user.username)
    page = render_template("admin_user.html", user=user, tokens=tokens, now=now,
                           roles=accounts.KNOWN_ROLES, settings=_setting_choices(user), refused=refused,
                           errors=_field_errors(refused, renamed), refused_form=form, is_self=user.username == g.user.username,
                           entered=request.form if refused else MultiDict(), today=now.astimezone(_zone()).date())
    return (page, _status(refused)) if refused else page


def _setting_choices(user: User | None = None) -> list[str]:
    """'*' (every setting), the deployed settings, and any the user already has that are no longer deployed."""
    with _services().uow(read_only=True) as uow:
        deployed = set(uow.processes.settings_by_process().values())
    return [ALL_SETTINGS, *sorted((deployed | set(user.settings if user else [])) - {ALL_SETTINGS})]


def _chosen_settings(user: User | None = None) -> list[str]:
    """The settings ticked on the form, which must be among those offered; none ticked is refused, not 'all'."""
    chosen = request.form.getlist("settings")
    offered = _setting_choices(user)
    unknown = [setting for setting in chosen if setting not in offered]
    if not chosen or unknown:
        raise InvalidInput("Choose the settings whose cases the user sees.", {"settings": [
            f"Choose from {', '.join(offered)}, not {', '.join(unknown)}." if unknown
            else "Tick at least one setting, or '*' for every setting."]})
    return chosen


def _zone():
    return _services().due_policy.zone


def _expiry() -> tuple[datetime | None, list[str]]:
    """The end of the day given as `expires_on`, on the organisation's clock (blank: no expiry), and its problems."""
    text = request.form.get("expires_on", "").strip()
    if not text:
        return None, []
    try:
        day = date.fromisoformat(text)
        expires = datetime.combine(day + timedelta(days=1), time(0), tzinfo=_zone()).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None, [f"Give a date such as 2027-01-31, not {text[:20]!r}."]
    if expires <= _services().clock.now():
        return None, ["A token cannot expire in the past: give today's date or a later one."]
    return expires, []
