"""Users, their roles, settings and passwords; API tokens live in `tokens`, signing in in `signin`."""
from __future__ import annotations

import logging
import re

from .errors import Conflict, InvalidInput
from .model import ALL_SETTINGS, User
from .passwords import MAX_PASSWORD_LENGTH, hash_password, password_matches  # noqa: F401  (part of this API)
from .services import Services
from .signin import USERNAME, SignInOutcome, active_user, session_key, sign_in, user_for_password  # noqa: F401
from .tokens import (  # noqa: F401  (the admin pages and the CLI reach tokens through accounts)
    ADMIN_ROLE,
    actor_name,
    add_token,
    hash_token,
    issue_token,
    new_token,
    revoke_token,
    tokens_of,
    user_for_token,
    user_named,
)

log = logging.getLogger(__name__)

KNOWN_ROLES = (
    "case_manager", "social_worker", "physician_advisor", "attending", "registration",
    "supervisor", "designer", "admin", "nurse_case_manager", "adjuster",
    "rehab_physician", "clinical_liaison", "benefits_coordinator", "irf_pai_coordinator",
    "therapist", "rehab_nurse", "ur_reviewer", "system",
)
_SETTING = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
MAX_DISPLAY_NAME_LENGTH = 255


def _password_problems(password: str | None) -> list[str]:
    if password is None:
        return []
    if not password.strip():
        return ["Give a password that is not blank."]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [f"Use at most {MAX_PASSWORD_LENGTH} characters."]
    return []


def _role_problems(roles: list[str]) -> list[str]:
    unknown = [role for role in roles if role not in KNOWN_ROLES]
    if unknown:
        return [f"Unknown role(s) {unknown}; choose from {', '.join(KNOWN_ROLES)}."]
    return [] if roles else ["Give at least one role."]


def _clean_settings(settings: list[str] | None) -> tuple[list[str], list[str]]:
    """The settings as stored (None or "*" is every setting), and what is wrong with them."""
    cleaned = sorted({s.strip() for s in settings or [ALL_SETTINGS] if s.strip()}) or [ALL_SETTINGS]
    bad = [s for s in cleaned if s != ALL_SETTINGS and not _SETTING.match(s)]
    problems = [f"Setting names are lower-case words joined by '_' (e.g. acute_hospital), not {bad}."] if bad else []
    return cleaned, problems


def _display_name_problems(display_name: str) -> list[str]:
    return [f"Use at most {MAX_DISPLAY_NAME_LENGTH} characters."] if len(display_name) > MAX_DISPLAY_NAME_LENGTH else []


def add_user(
    services: Services, *, username: str, roles: list[str], display_name: str = "", token: str | None = None,
    password: str | None = None, settings: list[str] | None = None, actor: User | str = "casework",
) -> tuple[User, str]:
    """Create a user with roles and return it with the secret of its 'default' API token (shown once, stored hashed).

    Without a password the user can use the API but not sign in to the web pages. `settings`
    are those whose cases the user may see (acute_hospital, ...); None or "*" is every setting.
    """
    by = actor_name(actor)
    settings, setting_problems = _clean_settings(settings)
    username = username.strip().lower()
    display_name = display_name.strip()
    problems: dict[str, list[str]] = {}
    if not USERNAME.match(username):
        problems["username"] = ["Use 2-64 lower-case letters, digits, '.', '_', '-' or '@'."]
    for field, found in (("roles", _role_problems(roles)), ("settings", setting_problems),
                         ("display_name", _display_name_problems(display_name)),
                         ("password", _password_problems(password))):
        if found:
            problems[field] = found
    if problems:
        raise InvalidInput("The user cannot be created.", problems)
    password_hash = hash_password(password) if password is not None else None
    with services.uow() as uow:
        if uow.users.get_by_username(username) is not None:
            raise Conflict(f"A user named '{username}' already exists.")
        user = uow.users.add(User(username, sorted(set(roles)), display_name or username,
                                  password_hash=password_hash, settings=settings))
        _, secret = add_token(uow, user, name="default", roles=None, expires_at=None, now=services.clock.now(),
                              actor=by, secret=token)
        uow.commit()
    log.info("User %s (%s) created by %s", username, ", ".join(user.roles), by)
    return user, secret


def list_users(services: Services) -> list[User]:
    """Return every user, active or not, by username."""
    with services.uow(read_only=True) as uow:
        return uow.users.list()


def update_user(services: Services, *, username: str, roles: list[str] | None = None,
                settings: list[str] | None = None, display_name: str | None = None, active: bool | None = None,
                actor: User | str) -> User:
    """Change a user's roles, settings, display name or activity; what is None stays as it is.

    Deactivating a user ends their sessions and stops their API tokens at their next request.
    """
    by = actor_name(actor)
    problems: dict[str, list[str]] = {}
    if roles is not None and _role_problems(roles):
        problems["roles"] = _role_problems(roles)
    if settings is not None and not any(s.strip() for s in settings):
        problems["settings"] = [f"Give at least one setting, or '{ALL_SETTINGS}' for every setting."]
    elif settings is not None:
        settings, problems["settings"] = _clean_settings(settings)
    if display_name is not None:
        display_name = display_name.strip()
        problems["display_name"] = _display_name_problems(display_name)
    if isinstance(actor, User) and actor.username == username:
        if active is False:
            problems["active"] = ["You cannot deactivate your own account; ask another administrator."]
        if roles is not None and ADMIN_ROLE not in roles:
            problems["roles"] = ["You cannot take away your own admin role; ask another administrator."]
    problems = {field: found for field, found in problems.items() if found}
    if problems:
        raise InvalidInput(f"The user '{username}' cannot be changed.", problems)
    with services.uow() as uow:
        user = user_named(uow, username)
        if roles is not None:
            user.roles = sorted(set(roles))
        if settings is not None:
            user.settings = settings
        if display_name is not None:
            user.display_name = display_name or user.username
        if active is not None:
            user.active = active
        uow.users.update(user)
        uow.commit()
    changed = [name for name, value in (("roles", roles), ("settings", settings), ("display name", display_name),
                                        ("active", active)) if value is not None]
    log.info("User %s changed by %s: %s", user.username, by, ", ".join(changed) or "nothing")
    return user


def set_password(services: Services, *, username: str, password: str, actor: User | str | None = None) -> None:
    """Give a user a new password for signing in to the web pages; their open sessions end."""
    by = actor_name(actor) if actor is not None else None
    problems = _password_problems(password)
    if problems:
        raise InvalidInput("The password cannot be set.", {"password": problems})
    password_hash = hash_password(password)
    with services.uow() as uow:
        user = user_named(uow, username)
        user.password_hash = password_hash
        uow.users.update(user)
        uow.commit()
    log.info("Password of %s changed%s", user.username, f" by {by}" if by else "")


def unlock(services: Services, *, username: str, actor: User | str) -> User:
    """Lift a sign-in lock-out and forget the wrong passwords counted so far."""
    by = actor_name(actor)
    with services.uow() as uow:
        user = user_named(uow, username)
        uow.users.unlock(user.id)
        uow.commit()
    user.failed_signins, user.locked_until = 0, None
    log.info("User %s unlocked by %s", user.username, by)
    return user
