"""Signing in with a password: a slow check, a lock-out after wrong passwords in a row, and who a session is."""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .model import User
from .passwords import MAX_PASSWORD_LENGTH, hash_password, needs_rehash, password_matches, unknown_user_hash
from .services import Services

log = logging.getLogger(__name__)

USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{1,63}$")
SIGNIN_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class SignInOutcome:
    """The user signed in, or None; `locked_until` says the account is locked (no password was checked then)."""

    user: User | None = None
    locked_until: datetime | None = None


def sign_in(services: Services, *, username: str, password: str, attempts: int = SIGNIN_ATTEMPTS,
            lockout: timedelta = LOCKOUT) -> SignInOutcome:
    """Check sign-in credentials; `attempts` wrong passwords in a row lock the account for `lockout`."""
    username = username.strip().lower()
    now = services.clock.now()
    user = None
    if USERNAME.match(username) and len(password) <= MAX_PASSWORD_LENGTH:
        with services.uow(read_only=True) as uow:
            user = uow.users.get_by_username(username)
    if user is not None and _locked(user, now):
        log.warning("Sign-in of %s refused: the account is locked until %s", username, user.locked_until.isoformat())
        return SignInOutcome(locked_until=user.locked_until)
    can_sign_in = user is not None and user.active and bool(user.password_hash)
    # The same slow check whoever asks, so an unknown username takes as long as a wrong password.
    matches = password_matches(user.password_hash if can_sign_in else unknown_user_hash(), password)
    if not can_sign_in:
        # The name typed may be a password typed in the wrong box: only a known one is logged.
        log.info("Sign-in failed: %s", f"{username} cannot sign in" if user is not None else "unknown username")
        return SignInOutcome()
    if not matches:
        return _wrong_password(services, user, now=now, attempts=attempts, lockout=lockout)
    new_hash = hash_password(password) if needs_rehash(user.password_hash) else None
    with services.uow() as uow:
        signed_in = uow.users.record_good_signin(user.id, now=now, checked_hash=user.password_hash, new_hash=new_hash)
        uow.commit()
    if not signed_in:  # locked, or the password changed, while this one was being checked
        log.warning("Sign-in of %s refused: the account changed during the check", username)
        return SignInOutcome(locked_until=_current_lock(services, username, now))
    user.password_hash = new_hash or user.password_hash
    user.failed_signins, user.locked_until = 0, None
    log.info("%s signed in", username)
    return SignInOutcome(user=user)


def _wrong_password(services: Services, user: User, *, now: datetime, attempts: int,
                    lockout: timedelta) -> SignInOutcome:
    with services.uow() as uow:
        counted = uow.users.record_failed_signin(user.id, now=now, attempts=attempts, lock_until=now + lockout)
        uow.commit()
    if counted is None:  # another attempt locked the account meanwhile
        return SignInOutcome(locked_until=_current_lock(services, user.username, now))
    in_a_row, locked_until = counted
    if locked_until is not None:
        log.warning("%s locked until %s after %d wrong passwords in a row", user.username, locked_until.isoformat(),
                    attempts)
        return SignInOutcome(locked_until=locked_until)
    log.info("Sign-in of %s failed: wrong password (%d in a row)", user.username, in_a_row)
    return SignInOutcome()


def _locked(user: User, now: datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


def _current_lock(services: Services, username: str, now: datetime) -> datetime | None:
    with services.uow(read_only=True) as uow:
        user = uow.users.get_by_username(username)
    return user.locked_until if user is not None and _locked(user, now) else None


def user_for_password(services: Services, *, username: str, password: str) -> User | None:
    """Return the active user these sign-in credentials belong to, or None, whichever part is wrong."""
    return sign_in(services, username=username, password=password).user


def active_user(services: Services, *, username: str | None) -> User | None:
    """Return the active user of this name (a signed-in session's), or None."""
    if not username:
        return None
    with services.uow(read_only=True) as uow:
        user = uow.users.get_by_username(username)
    return user if user is not None and user.active else None


def session_key(user: User) -> str:
    """A fingerprint of the user's password: a session made before the password changed no longer matches it."""
    return hashlib.sha256(f"{user.id}:{user.password_hash}".encode()).hexdigest()[:32]
