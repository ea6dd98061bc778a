"""Users, roles and API tokens."""
from __future__ import annotations

import hashlib
import re
import secrets

from .errors import Conflict, InvalidInput
from .model import User
from .services import Services

KNOWN_ROLES = (
    "case_manager", "social_worker", "physician_advisor", "attending", "registration",
    "supervisor", "designer", "admin", "nurse_case_manager", "adjuster",
    "rehab_physician", "clinical_liaison", "benefits_coordinator", "irf_pai_coordinator",
    "therapist", "rehab_nurse", "ur_reviewer", "system",
)
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{1,63}$")


def hash_token(token: str) -> str:
    """Return the stored form of an API token (tokens are random, so a fast hash suffices)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(
    services: Services, *, username: str, roles: list[str], display_name: str = "", token: str | None = None
) -> tuple[User, str]:
    """Create a user with roles and return it with its API token (shown once, stored hashed)."""
    username = username.strip().lower()
    problems: dict[str, list[str]] = {}
    if not _USERNAME.match(username):
        problems["username"] = ["Use 2-64 lower-case letters, digits, '.', '_', '-' or '@'."]
    unknown = [role for role in roles if role not in KNOWN_ROLES]
    if not roles or unknown:
        problems["roles"] = [f"Unknown role(s) {unknown}; choose from {', '.join(KNOWN_ROLES)}." if unknown else "Give at least one role."]
    if problems:
        raise InvalidInput("The user cannot be created.", problems)
    token = token or secrets.token_urlsafe(32)
    with services.uow() as uow:
        if uow.users.get_by_username(username) is not None:
            raise Conflict(f"A user named '{username}' already exists.")
        user = uow.users.add(User(username, sorted(set(roles)), display_name or username, hash_token(token)))
        uow.commit()
    return user, token


def new_token(services: Services, *, username: str) -> str:
    """Replace a user's API token with a new one and return it."""
    token = secrets.token_urlsafe(32)
    with services.uow() as uow:
        user = uow.users.get_by_username(username)
        if user is None:
            raise InvalidInput(f"There is no user named '{username}'.", {"username": ["Unknown user."]})
        user.token_hash = hash_token(token)
        uow.users.update(user)
        uow.commit()
    return token


def user_for_token(services: Services, token: str) -> User | None:
    """Return the active user a bearer token belongs to, or None."""
    if not token:
        return None
    with services.uow(read_only=True) as uow:
        user = uow.users.get_by_token_hash(hash_token(token))
    return user if user is not None and user.active else None
