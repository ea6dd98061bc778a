"""Password hashes: argon2id for new ones; the scrypt hashes stored before it still verify, once each."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MAX_PASSWORD_LENGTH = 1024
# argon2-cffi's defaults (RFC 9106's low-memory profile): 64 MiB and a few passes per check.
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """Return the stored form of a password: salted argon2id, in the PHC string format."""
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    """Return whether a password is the one a stored hash (argon2, or an older scrypt) was made from."""
    if password_hash.startswith("scrypt:"):
        return _scrypt_matches(password_hash, password)
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Return whether a stored hash should be remade now that the password is known (older scheme or cost)."""
    if not password_hash.startswith("$argon2"):
        return True
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def unknown_user_hash() -> str:
    """A hash checked when there is no such user, so a wrong username takes as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


def _scrypt_matches(password_hash: str, password: str) -> bool:
    # werkzeug.security's format, 'scrypt:N:r:p$salt$hex', as Casework stored passwords before argon2.
    try:
        method, salt, expected = password_hash.split("$", 2)
        _, n, r, p = method.split(":")
        n, r, p = int(n), int(r), int(p)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=salt.encode("utf-8"), n=n, r=r, p=p,
                                maxmem=132 * n * r * p, dklen=64).hex()
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)
