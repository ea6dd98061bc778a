"""Users, roles, API tokens and passwords."""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from functools import cache

from .errors import Conflict, InvalidInput
from .model import ALL_SETTINGS, User
from .services import Services

KNOWN_ROLES = (
    "case_manager", "social_worker", "physician_advisor", "attending", "registration",
    "supervisor", "designer", "admin", "nurse_case_manager", "adjuster",
    "rehab_physician", "clinical_liaison", "benefits_coordinator", "irf_pai_coordinator",
    "therapist", "rehab_nurse", "ur_reviewer", "system",
)
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{1,63}$")
_SETTING = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
MAX_PASSWORD_LENGTH = 1024
# scrypt's cost: 32 MiB and tens of milliseconds per check, so guessing is slow.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_SALT_CHARS = string.ascii_letters + string.digits


def hash_token(token: str) -> str:
    """Return the stored form of an API token (tokens are random, so a fast hash suffices)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    """Return the stored form of a password: salted scrypt, in werkzeug.security's format.

    The core may not import werkzeug (DESIGN §1), so this is the same computation on the
    standard library; `werkzeug.security.check_password_hash` accepts what it returns.
    """
    salt = "".join(secrets.choice(_SALT_CHARS) for _ in range(16))
    return f"scrypt:{_SCRYPT_N}:{_SCRYPT_R}:{_SCRYPT_P}${salt}${_scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)}"


def password_matches(password_hash: str, password: str) -> bool:
    """Return whether a password is the one a stored hash was made from."""
    try:
        method, salt, expected = password_hash.split("$", 2)
        name, n, r, p = method.split(":")
        if name != "scrypt":
            return False
        actual = _scrypt(password, salt, int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: str, n: int, r: int, p: int) -> str:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt.encode("utf-8"), n=n, r=r, p=p,
                          maxmem=132 * n * r * p, dklen=64).hex()


@cache
def _unknown_user_hash() -> str:
    # Checked when no such user exists, so a wrong username takes as long as a wrong password.
    return hash_password(secrets.token_urlsafe(16))


def _password_problems(password: str | None) -> list[str]:
    if password is None:
        return []
    if not password.strip():
        return ["Give a password that is not blank."]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [f"Use at most {MAX_PASSWORD_LENGTH} characters."]
    return []


def add_user(
    services: Services, *, username: str, roles: list[str], display_name: str = "", token: str | None = None,
    password: str | None = None, settings: list[str] | None = None,
) -> tuple[User, str]:
    """Create a user with roles and return it with its API token (shown once, stored hashed).

    Without a password the user can use the API but not sign in to the web pages. `settings`
    are those whose cases the user may see (acute_hospital, ...); None or "*" is every setting.
    """
    settings = sorted({s.strip() for s in settings or [ALL_SETTINGS] if s.strip()}) or [ALL_SETTINGS]
    username = username.strip().lower()
    problems: dict[str, list[str]] = {}
    if not _USERNAME.match(username):
        problems["username"] = ["Use 2-64 lower-case letters, digits, '.', '_', '-' or '@'."]
    unknown = [role for role in roles if role not in KNOWN_ROLES]
    if not roles or unknown:
        problems["roles"] = [f"Unknown role(s) {unknown}; choose from {', '.join(KNOWN_ROLES)}." if unknown else "Give at least one role."]
    bad_settings = [s for s in settings if s != ALL_SETTINGS and not _SETTING.match(s)]
    if bad_settings:
        problems["settings"] = [f"Setting names are lower-case words joined by '_' (e.g. acute_hospital), not {bad_settings}."]
    if _password_problems(password):
        problems["password"] = _password_problems(password)
    if problems:
        raise InvalidInput("The user cannot be created.", problems)
    token = token or secrets.token_urlsafe(32)
    password_hash = hash_password(password) if password is not None else None
    with services.uow() as uow:
        if uow.users.get_by_username(username) is not None:
            raise Conflict(f"A user named '{username}' already exists.")
        user = uow.users.add(User(username, sorted(set(roles)), display_name or username, hash_token(token),
                                  password_hash=password_hash, settings=settings))
        uow.commit()
    return user, token


def set_password(services: Services, *, username: str, password: str) -> None:
    """Give a user a new password for signing in to the web pages."""
    problems = _password_problems(password)
    if problems:
        raise InvalidInput("The password cannot be set.", {"password": problems})
    password_hash = hash_password(password)
    with services.uow() as uow:
        user = uow.users.get_by_username(username)
        if user is None:
            raise InvalidInput(f"There is no user named '{username}'.", {"username": ["Unknown user."]})
        user.password_hash = password_hash
        uow.users.update(user)
        uow.commit()


def user_for_password(services: Services, *, username: str, password: str) -> User | None:
    """Return the active user these sign-in credentials belong to, or None, whichever part is wrong."""
    username = username.strip().lower()
    user = None
    if _USERNAME.match(username) and len(password) <= MAX_PASSWORD_LENGTH:
        with services.uow(read_only=True) as uow:
            user = uow.users.get_by_username(username)
    stored = user.password_hash if user is not None and user.password_hash else _unknown_user_hash()
    matches = password_matches(stored, password[:MAX_PASSWORD_LENGTH])
    return user if matches and user is not None and user.password_hash and user.active else None


def active_user(services: Services, *, username: str | None) -> User | None:
    """Return the active user of this name (a signed-in session's), or None."""
    if not username:
        return None
    with services.uow(read_only=True) as uow:
        user = uow.users.get_by_username(username)
    return user if user is not None and user.active else None


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
